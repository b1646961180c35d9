"""fitting.export: BVH read back by an independent reader, GLB re-read, bad options and folders, Blender round trip.

The run folder is written by the project's own Writer from known bodies (fitting.synthetic
views): a 60-frame video with a missing frame, and a single image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest
import torch
from scipy.spatial.transform import Rotation

from body.skeleton import BODY_JOINT_NAMES, SMPLX_JOINT_NAMES
from fitting.config import load_config, save_config
from fitting.export import export_run, main
from fitting.export_motion import SMPLX_PARENTS, find_clips, load_motion
from fitting.fitter import FitResult
from fitting.outputs import BODY_PARAMS, Scene, Writer
from fitting.synthetic import render_views
from fitting.targets import PersonTargets
from keypoints.video import video_writer

ROOT = Path(__file__).resolve().parents[1]
FRAMES = 60
MISSING = 17  # a video frame without a fit (the BVH holds the pose before it)
FPS = 25.0


def _write_run(out: Path, model, video: Path, overrides: tuple[str, ...] = ()) -> None:
    """A 60-frame video (one frame missing) and one image, fitted to known bodies, saved by the Writer."""
    rng = np.random.default_rng(0)
    n = FRAMES + 1
    t = np.arange(n)[:, None, None]
    pose = rng.normal(0, 0.2, (1, 21, 3)) + 0.4 * np.sin(t * 0.2 + rng.uniform(0, 6, (1, 21, 3)))
    shape = np.repeat(rng.normal(0, 0.5, (1, model.num_shape)), n, 0).astype(np.float32)
    views = render_views(model, pose.astype(np.float32), None, rng, shape=shape)
    scenes = []
    for i, frame in enumerate(views.frames):
        if i == MISSING:
            continue
        params = {k: v[i] for k, v in views.params.items()}
        for side in ("left", "right"):
            params[f"{side}_hand_pose"] = rng.normal(0, 0.3, (15, 3)).astype(np.float32)
        projected = {"body25": frame.points["body25"][0][:, :2]}
        result = FitResult(params, np.zeros(1), np.zeros(1, int), {}, np.zeros(3), projected=projected)
        key, source = ("still.png", out / "still.png") if i == FRAMES else (f"clip.mp4/{i:06d}", video)
        scenes.append(Scene(key, source, [PersonTargets(0, frame)], [result]))
    cfg = load_config(None, ["output.mesh=false", "output.overlay=false", "output.max_reprojection=100", *overrides])
    save_config(cfg, out / "config.yaml")
    Writer(out, model, cfg).write(scenes)


@pytest.fixture(scope="module")
def run(anny_body, tmp_path_factory):
    """The run folder, its exports (BVH in metres, GLB) and the motions load_motion makes of it."""
    folder = tmp_path_factory.mktemp("export")
    video = folder / "clip.mp4"
    with video_writer(video, FPS) as write:
        for _ in range(3):
            write(np.zeros((32, 32, 3), np.uint8))
    out = folder / "out"
    _write_run(out, anny_body, video)
    written = export_run(out, ["bvh", "glb"])
    motions = {c.name: load_motion(anny_body, c) for c in find_clips(out)}
    return out, written, motions


def _model_joints(model, frames: list[Path], world: np.ndarray) -> np.ndarray:
    """(T, 55, 3) the body model's own joints posed with each saved frame, in the export's world."""
    data = [dict(np.load(p)) for p in frames]
    params = {k: torch.as_tensor(np.stack([d[k] for d in data])) for k in BODY_PARAMS if k in data[0]}
    with torch.no_grad():
        joints = model(**params).joints[:, : len(SMPLX_JOINT_NAMES)].double().numpy()
    return joints @ world[:3, :3].T + world[:3, 3]


def test_files_are_written_per_clip(run):
    out, written, motions = run
    assert sorted(p.relative_to(out).as_posix() for p in written) == [
        "clip.mp4/motion.bvh",
        "clip.mp4/motion.glb",
        "still.png.bvh",
        "still.png.glb",
    ]
    clip = motions["clip.mp4"]
    assert clip.fps == FPS and len(clip.indices) == FRAMES - 1 and clip.indices[-1] == FRAMES - 1


def test_bvh_read_by_an_independent_reader_matches_the_model(run, anny_body):
    from bvh import Bvh

    out, _, motions = run
    clip = motions["clip.mp4"]
    mocap = Bvh((out / "clip.mp4" / "motion.bvh").read_text())
    assert mocap.get_joints_names()[0] == "pelvis" and set(mocap.get_joints_names()) == set(BODY_JOINT_NAMES)
    assert mocap.nframes == FRAMES and mocap.frame_time == pytest.approx(1 / FPS)
    want = _model_joints(anny_body, sorted((out / "clip.mp4").glob("0*.npz")), clip.world)[clip.held_frames()]
    got = np.zeros((mocap.nframes, len(BODY_JOINT_NAMES), 3))
    for f in range(mocap.nframes):
        position, rotation = {}, {}
        for name in mocap.get_joints_names():
            channels = mocap.joint_channels(name)
            value = dict(zip(channels, mocap.frame_joint_channels(f, name, channels)))
            local = Rotation.from_euler("ZXY", [value[f"{a}rotation"] for a in "ZXY"], degrees=True).as_matrix()
            offset = np.array(mocap.joint_offset(name))
            parent = mocap.joint_parent(name)
            if parent is None:
                position[name] = offset + [value[f"{a}position"] for a in "XYZ"]
                rotation[name] = local
            else:
                position[name] = position[parent.name] + rotation[parent.name] @ offset
                rotation[name] = rotation[parent.name] @ local
        got[f] = [position[n] for n in BODY_JOINT_NAMES]
    error = np.linalg.norm(got - want[:, : len(BODY_JOINT_NAMES)], axis=-1)
    print(f"BVH (bvh package FK) vs the body model's joints: max {1000 * error.max():.4f} mm over {len(got)} frames")
    assert error.max() < 1e-3
    assert np.allclose(got[MISSING], got[MISSING - 1])  # a frame without a fit holds the last pose


def test_bvh_units_are_centimetres_on_request(run, tmp_path):
    out, _, _ = run
    metres = (out / "still.png.bvh").read_text()
    copy = tmp_path / "out"
    copy.mkdir()
    shutil.copy(out / "still.png.npz", copy)
    (centimetres,) = export_run(copy, ["bvh"], units="cm")
    hip = lambda text: [float(v) for v in text.split("JOINT left_hip")[1].split("OFFSET")[1].split()[:3]]  # noqa: E731
    assert np.allclose(np.array(hip(centimetres.read_text())), 100 * np.array(hip(metres)), atol=1e-4)


def test_single_image_stands_upright_on_the_floor(run):
    _, _, motions = run
    still = motions["still.png"]
    assert len(still.indices) == 1
    up = still.rotations[0, 0][:, 1]  # the pelvis's up axis in the world
    assert up @ [0.0, 1.0, 0.0] > 0.9999
    head, pelvis = still.joints[0, SMPLX_JOINT_NAMES.index("head")], still.joints[0, 0]
    assert head[1] - pelvis[1] > 0.15 and 0.0 < pelvis[1] < 1.5
    assert abs(pelvis[0]) < 1e-9 and abs(pelvis[2]) < 1e-9


def _glb_arrays(gltf: pygltflib.GLTF2, accessor: int) -> np.ndarray:
    a = gltf.accessors[accessor]
    view = gltf.bufferViews[a.bufferView]
    dtype = {pygltflib.FLOAT: np.float32, pygltflib.UNSIGNED_INT: np.uint32, pygltflib.UNSIGNED_BYTE: np.uint8}
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[a.type]
    raw = gltf.binary_blob()[view.byteOffset : view.byteOffset + view.byteLength]
    return np.frombuffer(raw, dtype[a.componentType]).reshape(a.count, width).astype(np.float64)


def test_glb_reread_has_the_mesh_skeleton_frames_and_the_model_joints(run, anny_body):
    import trimesh

    out, _, motions = run
    clip = motions["clip.mp4"]
    path = out / "clip.mp4" / "motion.glb"
    gltf = pygltflib.GLTF2().load(str(path))
    primitive = gltf.meshes[0].primitives[0]
    vertices = _glb_arrays(gltf, primitive.attributes.POSITION)
    assert len(vertices) == anny_body.faces.max() + 1 == 13718
    assert [n.name for n in gltf.nodes[: len(SMPLX_JOINT_NAMES)]] == list(SMPLX_JOINT_NAMES)
    skin = gltf.skins[0]
    assert skin.joints[: len(SMPLX_JOINT_NAMES)] == list(range(len(SMPLX_JOINT_NAMES)))
    times = _glb_arrays(gltf, gltf.animations[0].samplers[0].input)[:, 0]
    assert np.allclose(times, clip.indices / FPS) and len(times) == FRAMES - 1
    assert gltf.cameras[0].type == "perspective"
    assert sum(len(g.vertices) for g in trimesh.load(path).geometry.values()) == len(vertices)

    # Forward kinematics of the file's nodes at every key, against the model's own joints.
    local_rot = np.tile(np.eye(3), (len(times), len(SMPLX_JOINT_NAMES), 1, 1))
    local_pos = np.tile([n.translation for n in gltf.nodes[: len(SMPLX_JOINT_NAMES)]], (len(times), 1, 1))
    for channel in gltf.animations[0].channels:
        values = _glb_arrays(gltf, gltf.animations[0].samplers[channel.sampler].output)
        if channel.target.path == "rotation":
            local_rot[:, channel.target.node] = Rotation.from_quat(values).as_matrix()
        else:
            local_pos[:, channel.target.node] = values
    world = np.zeros((len(times), len(SMPLX_JOINT_NAMES), 4, 4))
    for j, parent in enumerate(SMPLX_PARENTS):
        local = np.tile(np.eye(4), (len(times), 1, 1))
        local[:, :3, :3], local[:, :3, 3] = local_rot[:, j], local_pos[:, j]
        world[:, j] = local if parent < 0 else world[:, parent] @ local
    want = _model_joints(anny_body, sorted((out / "clip.mp4").glob("0*.npz")), clip.world)
    joint_error = np.linalg.norm(world[..., :3, 3] - want, axis=-1)

    # Skinning of the file's mesh (4 influences) against the model's own vertices.
    joints = _glb_arrays(gltf, primitive.attributes.JOINTS_0).astype(int)
    weights = _glb_arrays(gltf, primitive.attributes.WEIGHTS_0)
    inverse_bind = _glb_arrays(gltf, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    parent_of = {c: p for p, n in enumerate(gltf.nodes) for c in (n.children or [])}
    node_world = [world[0, node if node < len(SMPLX_JOINT_NAMES) else parent_of[node]] for node in skin.joints]
    skinning = np.stack(node_world) @ inverse_bind
    homogeneous = np.concatenate([vertices, np.ones((len(vertices), 1))], 1)
    posed = np.einsum("vk,vkij,vj->vi", weights, skinning[joints], homogeneous)[:, :3]
    data = dict(np.load(sorted((out / "clip.mp4").glob("0*.npz"))[0]))
    with torch.no_grad():
        model_vertices = anny_body(**{k: torch.as_tensor(data[k])[None] for k in BODY_PARAMS if k in data}).vertices
    model_vertices = model_vertices[0].double().numpy() @ clip.world[:3, :3].T + clip.world[:3, 3]
    vertex_error = np.linalg.norm(posed - model_vertices, axis=-1)
    print(
        f"GLB: joints vs the body model's: max {1000 * joint_error.max():.4f} mm over {len(times)} keys; "
        f"skinned vertices (frame 0): max {1000 * vertex_error.max():.2f} mm, mean {1000 * vertex_error.mean():.4f} mm"
    )
    assert joint_error.max() < 1e-3
    assert vertex_error.max() < 0.01 and vertex_error.mean() < 1e-4


def test_smplx_fits_export_with_the_users_model(smplx_body, tmp_path):
    out = tmp_path / "out"
    _write_run(out, smplx_body, tmp_path / "clip.mp4", ("body.model=smplx", f"body.model_path={smplx_body.path}"))
    written = export_run(out, ["bvh", "glb"])
    assert len(written) == 4
    motion = load_motion(smplx_body, find_clips(out)[0])
    fk, _ = motion.forward_kinematics()
    want = _model_joints(smplx_body, sorted((out / "clip.mp4").glob("0*.npz")), motion.world)
    assert np.abs(fk - want).max() < 1e-3
    gltf = pygltflib.GLTF2().load(str(out / "clip.mp4" / "motion.glb"))
    assert len(gltf.skins[0].joints) == len(SMPLX_JOINT_NAMES)  # SMPL-X skins on its own joints, no extra bones


def test_unknown_format_is_refused_in_one_line(run, capsys):
    out, _, _ = run
    assert main([str(out), "--format", "fbx"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "fbx" in err and "bvh, glb" in err


@pytest.mark.parametrize("case", ["missing", "empty", "truncated"])
def test_unusable_folder_gives_one_line(tmp_path, capsys, run, case):
    out, _, _ = run
    folder = tmp_path / "out"
    if case != "missing":
        folder.mkdir()
    if case == "truncated":
        data = (out / "still.png.npz").read_bytes()
        (folder / "still.png.npz").write_bytes(data[: len(data) // 2])
    assert main([str(folder), "--format", "bvh"]) == 2
    err = capsys.readouterr().err.strip()
    expected = {
        "missing": "no such folder",
        "empty": "holds no fitted frames",
        "truncated": "still.png.npz: unreadable",
    }
    assert "\n" not in err and expected[case] in err


def test_blender_round_trip(run, tmp_path):
    """Blender imports the BVH and the GLB; its joints match ours per frame (< 1 mm)."""
    blender = shutil.which("blender")
    if blender is None:
        pytest.skip("blender is not on PATH (Debian: apt-get install blender python3-numpy)")
    out, _, motions = run
    results = {}
    for name, stem in (("clip.mp4", out / "clip.mp4" / "motion"), ("still.png", out / "still.png")):
        motion = motions[name]
        reference = tmp_path / f"{name}.json"
        reference.write_text(
            json.dumps(
                {
                    "names": list(SMPLX_JOINT_NAMES),
                    "bvh_joints": motion.joints[motion.held_frames(), : len(BODY_JOINT_NAMES)].tolist(),
                    "glb_joints": motion.joints.tolist(),
                }
            )
        )
        result = tmp_path / f"{name}.result.json"
        script = ROOT / "benchmarks" / "blender_roundtrip.py"
        subprocess.run(
            [blender, "-b", "--factory-startup", "--python-exit-code", "1", "--python", str(script), "--"]
            + ["--bvh", f"{stem}.bvh", "--glb", f"{stem}.glb", "--reference", str(reference), "--out", str(result)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        results[name] = json.loads(result.read_text())
        for fmt in ("bvh", "glb"):
            r = results[name][fmt]
            print(f"Blender {fmt.upper()} {name}: {r['frames']} frames, max {r['max_mm']:.4f} mm")
    assert results["clip.mp4"]["bvh"]["frames"] == FRAMES and results["clip.mp4"]["glb"]["frames"] == FRAMES - 1
    assert all(r[fmt]["max_mm"] < 1.0 for r in results.values() for fmt in ("bvh", "glb"))
