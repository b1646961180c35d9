"""Every shipped source skeleton on one short real clip: map, units, up axis, rest alignment,
hinges and bend direction of knees and elbows, and a proof that each check can fail."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from body.skeleton import BODY_JOINT_NAMES
from prior.data import Motion, bone_direction_errors, load_motion, smplx_forward_kinematics
from prior.data.asf_amc import read_amc, read_asf
from prior.data.build import inserted_frames, static_frames
from prior.data.bvh import read_bvh
from prior.data.load import detect_units, skeleton_height
from prior.data.retarget import flexion_axis, rest_is_bent
from prior.data.skeleton_maps import CMU_LENGTH_UNIT, SKELETON_MAPS, find_skeleton_map
from tests.prior_data_mocap import (
    AVAILABLE_CLIPS,
    BUNDLED_CLIPS,
    SKELETON_CLIPS,
    data_params,
    hinge_stats,
    skeleton_clip,
)

J = BODY_JOINT_NAMES.index
# name -> (map, metres per unit or "typical", frame rate, whether the zero pose bends a knee or elbow)
EXPECTED: dict[str, tuple[str, float | str, float]] = {
    "snu_woody": ("snu_woody", 0.01, 24.0),
    "snu_woody_left_first": ("snu_woody", 0.01, 30.0),
    "snu_woody_26": ("snu_woody", 0.0254, 30.0),
    "snu_22": ("snu_22", 0.01, 30.0),
    "snu_22_arms_first": ("snu_22_arms_first", 0.01, 30.0),
    "cmu_mb": ("cmu_mb_bvh", CMU_LENGTH_UNIT, 120.0),
    "cmu_max": ("cmu_max_bvh", CMU_LENGTH_UNIT, 120.0),
    "cmu_asf_bvh": ("cmu_asf_bvh", CMU_LENGTH_UNIT, 30.0),
    "fair": ("fair_bvh", "typical", 119.88),
    "cmu_gait": ("cmu_asf", 0.0254 / 0.45, 120.0),
}
# Hinge checks (mean and 5th percentile of |axis . hinge| over frames bent > 20 deg). The woody
# captures' 3-dof elbows wobble about their bending axis by a few degrees.
HINGE_LIMITS = {"snu_woody": (0.97, 0.9), "snu_woody_left_first": (0.95, 0.88)}
# Bone-direction check (deg, median / p95). SNU 22's collars hang from its neck, not from the
# chest as SMPL-X's do: those two bones are off by the neck's rotation (basketball: a constant
# 1.8 deg).
BONE_LIMITS = {"snu_22": (2.0, 5.0)}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("skeletons")
    return {name: skeleton_clip(name, root / name) for name in AVAILABLE_CLIPS}


@pytest.fixture(scope="module")
def motions(clips: dict[str, Path]) -> dict[str, Motion]:
    return {name: load_motion(path) for name, path in clips.items()}


def _raw(path: Path):
    if path.suffix == ".amc":
        return read_amc(path, read_asf(path.with_name(path.name.split("_")[0] + ".asf")))
    return read_bvh(path, length_scale=1.0)


@pytest.mark.parametrize("name", data_params(AVAILABLE_CLIPS, BUNDLED_CLIPS))
def test_reader_map_units_and_up_axis(clips: dict, motions: dict, name: str) -> None:
    motion, (map_name, unit, fps) = motions[name], EXPECTED[name]
    assert motion.skeleton == map_name and motion.fps == pytest.approx(fps, rel=1e-3)
    assert motion.body_pose.shape == (motion.num_frames, 21, 3) and np.isfinite(motion.body_pose).all()
    src = _raw(clips[name])
    if clips[name].suffix == ".bvh":
        smap, renames = find_skeleton_map(src.names, src.parents)
        src.names = [renames.get(n, n) for n in src.names]
        detected = detect_units(src, smap)
        if unit == "typical":  # FAIR: no standard unit fits; each file is scaled to a typical adult
            assert not any(abs(np.log(skeleton_height(src, smap) * u / 1.5)) < np.log(1.35) for u in (0.01, 1.0))
        else:
            assert detected == pytest.approx(unit, rel=1e-6)
    else:
        assert src.first_frame == 10 and motion.first_frame == 10  # trimmed CMU gait clip
    # Metres and y up, whatever the file's units and up axis: a 1.3-1.8 m head-to-ankle chain,
    # the head above the pelvis and the ankles below it in (nearly) every frame.
    rest = motion.rest_joints
    pairs = ((15, 12), (12, 9), (9, 6), (6, 3), (3, 0), (0, 1), (1, 4), (4, 7))  # head ... left ankle
    chain = sum(np.linalg.norm(rest[a] - rest[b]) for a, b in pairs)
    assert 1.2 < chain < 1.9, chain
    up = motion.joints[:, J("head"), 1] - motion.joints[:, J("pelvis"), 1]
    down = motion.joints[:, J("pelvis"), 1] - motion.joints[:, [J("left_ankle"), J("right_ankle")], 1].mean(-1)
    assert (up > 0.2).mean() > 0.9 and (down > 0.4).mean() > 0.9
    # Facing: the toes point along the pelvis's forward axis (+z of root_orient), the left hip
    # lies along its +x: no skeleton comes out mirrored or turned round.
    root = axis_angle_to_matrix(torch.tensor(motion.root_orient, dtype=torch.float64)).numpy()
    toes = motion.joints[:, J("left_foot")] - motion.joints[:, J("left_ankle")]
    hips = motion.joints[:, J("left_hip")] - motion.joints[:, J("right_hip")]
    cos_toes = (toes * root[:, :, 2]).sum(-1) / np.linalg.norm(toes, axis=-1)
    cos_hips = (hips * root[:, :, 0]).sum(-1) / np.linalg.norm(hips, axis=-1)
    assert np.median(cos_toes) > 0.6 and (cos_toes > 0).mean() > 0.85 and np.median(cos_hips) > 0.95


@pytest.mark.parametrize("name", data_params(AVAILABLE_CLIPS, BUNDLED_CLIPS))
def test_retargeted_rest_is_a_tpose_and_fk_reproduces_the_source(motions: dict, name: str) -> None:
    m = motions[name]
    rest = torch.tensor(m.rest_joints, dtype=torch.float64)
    for joint, child, direction in (
        ("left_hip", "left_knee", (0, -1, 0)), ("right_knee", "right_ankle", (0, -1, 0)),
        ("left_shoulder", "left_elbow", (1, 0, 0)), ("right_elbow", "right_wrist", (-1, 0, 0)),
        ("spine2", "spine3", (0, 1, 0)), ("spine3", "neck", (0, 1, 0)),
    ):  # fmt: skip
        bone = rest[J(child)] - rest[J(joint)]
        if bone.norm() < 1e-6:  # CMU conversions: the neck sits where the thorax does
            continue
        assert torch.allclose(bone / bone.norm(), torch.tensor(direction, dtype=bone.dtype), atol=1e-5), (name, joint)
    errors = bone_direction_errors(m)[0]
    median, p95 = BONE_LIMITS.get(name, (0.5, 1.0))
    assert np.median(errors) < median and np.percentile(errors, 95) < p95, (
        np.median(errors),
        np.percentile(errors, 95),
    )
    fk = smplx_forward_kinematics(m.body_pose, m.rest_joints, m.root_orient).numpy()
    placed = fk - fk[:, :1] + m.transl[:, None]
    assert np.median(np.abs(placed - m.joints)) < 0.01


@pytest.mark.parametrize("name", data_params(AVAILABLE_CLIPS, BUNDLED_CLIPS))
def test_knees_and_elbows_are_hinges_bending_forward(motions: dict, name: str) -> None:
    mean_limit, p5_limit = HINGE_LIMITS.get(name, (0.98, 0.95))
    for joint, s in hinge_stats(motions[name].body_pose).items():
        print(f"{name} {joint}: {s}")
        assert s["n"] >= 30, f"{name} {joint}: too few bent frames to judge"
        assert s["share"] > mean_limit and s["p5"] > p5_limit, (joint, s)
        assert s["flexion"] > 0.97, (joint, s)


def _twist(body_pose: np.ndarray, joint: str, degrees: float) -> np.ndarray:
    """Turn a joint's rotation axis by `degrees` about its bone (as a mis-twisted rest would)."""
    bone = {"knee": (0.0, -1.0, 0.0), "elbow": (1.0, 0.0, 0.0)}[joint.split("_")[1]]
    q = axis_angle_to_matrix(torch.tensor(bone, dtype=torch.float64) * np.radians(degrees))
    out = body_pose.copy()
    rot = axis_angle_to_matrix(torch.tensor(out[:, J(joint) - 1], dtype=torch.float64))
    out[:, J(joint) - 1] = matrix_to_axis_angle(q @ rot @ q.T).numpy()
    return out


@pytest.mark.parametrize("name", data_params(AVAILABLE_CLIPS, BUNDLED_CLIPS))
def test_each_check_can_fail(motions: dict, name: str) -> None:
    m = motions[name]
    # Pose noise of ~2 deg per axis: the bone directions no longer match the source's.
    noise = np.random.default_rng(0).normal(0, 0.04, m.body_pose.shape).astype(np.float32)
    assert np.median(bone_direction_errors(replace(m, body_pose=m.body_pose + noise))[0]) > 2.0
    # A rest alignment twisted by 60 deg about the shin: the knee no longer bends about x.
    assert hinge_stats(_twist(m.body_pose, "left_knee", 60.0))["left_knee"]["share"] < 0.7
    # An elbow bending backwards (the hinge's sign flipped): the bend-direction check fails.
    flipped = m.body_pose.copy()
    flipped[:, J("right_elbow") - 1] *= -1
    assert hinge_stats(flipped)["right_elbow"]["flexion"] < 0.05


def test_snu_22_zero_pose_is_a_line_not_a_tpose(clips: dict) -> None:
    """Its offsets all point along +x; the retargeted rest is a T-pose nevertheless (above), and
    the measured flexion axes are the skeleton's one-dof -z hinge."""
    src = read_bvh(clips["snu_22"], length_scale=1.0)
    children = {p: c for c, p in reversed(list(enumerate(src.parents))) if p >= 0}
    along_x = [abs(o[0]) / np.linalg.norm(o) > 0.9 for o in src.offsets[1:] if np.linalg.norm(o) > 1.0]
    assert np.mean(along_x) > 0.75
    smap, _ = find_skeleton_map(src.names, src.parents)
    assert smap.rest == "frames" and not rest_is_bent(src, smap)
    for joint in ("LeftLeg", "RightForeArm"):
        j = src.index(joint)
        axis = flexion_axis(src.local_rot[:, j], src.offsets[children[j]], src.offsets[j])
        assert np.allclose(axis, (0, 0, -1), atol=1e-3), (joint, axis)


@pytest.mark.parametrize(
    "name",
    data_params(
        [n for n in ("snu_woody", "snu_woody_26", "cmu_mb", "cmu_max", "cmu_asf_bvh", "fair") if n in AVAILABLE_CLIPS],
        BUNDLED_CLIPS,
    ),
)
def test_shipped_flexion_constants_match_the_clip(clips: dict, name: str) -> None:
    src = _raw(clips[name])
    smap, renames = find_skeleton_map(src.names, src.parents)
    src.names = [renames.get(n, n) for n in src.names]
    children = {p: c for c, p in reversed(list(enumerate(src.parents))) if p >= 0}
    for joint, constant in smap.flexion.items():
        j = src.index(joint)
        axis = flexion_axis(src.local_rot[:, j], src.offsets[children[j]], src.offsets[j])
        if name == "snu_woody_26" and "ForeArm" in joint:
            continue  # the 26-joint rig's elbows differ from the 20-joint constants: measured per motion
        angle = np.degrees(np.arccos(np.clip(axis @ np.asarray(constant) / np.linalg.norm(constant), -1, 1)))
        assert angle < 10.0, (name, joint, axis, constant)


def test_maps_tell_the_skeletons_apart(clips: dict) -> None:
    names = {}
    for name, path in clips.items():
        if path.suffix == ".bvh":
            src = read_bvh(path, length_scale=1.0)
            names[name] = find_skeleton_map(src.names, src.parents)[0].name
    assert names == {k: v[0] for k, v in EXPECTED.items() if k != "cmu_gait" and k in clips}
    assert len({m.name for m in SKELETON_MAPS}) == len(SKELETON_MAPS)
    # Joint names match case-insensitively (SNU's HEad) and through aliases (woody's `root`).
    src = read_bvh(clips["snu_woody"], length_scale=1.0)
    assert "HEad" in src.names and "LeftShoulder1" in src.names
    renamed = ["root" if n == "Hips" else n for n in src.names]
    smap, renames = find_skeleton_map(renamed, src.parents)
    assert smap.name == "snu_woody" and renames["root"] == "Hips" and renames["HEad"] == "Head"


def test_every_skeleton_has_a_clip(shared_data: Path) -> None:
    """The CMU clips (cmu_mb, cmu_max, cmu_asf_bvh, cmu_gait) are checked only where the full archives are."""
    assert AVAILABLE_CLIPS == tuple(SKELETON_CLIPS)


def test_static_frames(motions: dict) -> None:
    assert all(inserted_frames(motions[n].body_pose) == 0 for n in ("snu_22", "fair"))
    # SNU basketball takes open with a held calibration T-pose: a static stretch of ~1 s or more.
    m = motions["snu_22"]
    static = static_frames(m.body_pose, m.fps)
    assert static[:30].all() and static.sum() < 0.3 * len(static)
    # A still pose is static, a walk is not; a held pose shorter than the window is kept.
    walk = motions["snu_woody"]
    assert not static_frames(walk.body_pose, walk.fps).any()
    held = np.repeat(walk.body_pose[100:101], 200, axis=0)
    assert static_frames(held, 120.0).all() and not static_frames(held[:100], 120.0).any()


def test_inserted_frames(motions: dict, shared_data: Path) -> None:
    # CMU MotionBuilder-style conversions start with the ASF's T-pose glued before the take.
    assert inserted_frames(motions["cmu_mb"].body_pose) == 1
    assert all(inserted_frames(motions[n].body_pose) == 0 for n in ("cmu_asf_bvh", "cmu_gait"))
    # The Daz-friendly conversion blends from its T-pose into the take over the first frames.
    pose = motions["cmu_mb"].body_pose[1:]
    blend = np.concatenate([np.linspace(np.zeros_like(pose[0]), pose[0], 5), pose])  # 0 = the SMPL-X T-pose
    assert inserted_frames(blend) == 4
    walk = motions["cmu_mb"]
    assert not static_frames(walk.body_pose[1:], walk.fps).any()
