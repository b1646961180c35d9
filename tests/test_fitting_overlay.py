"""Overlays drawn by a reused renderer, output.overlay_scale, and the Writer's one renderer per run."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from body.render import PALETTE, OverlayRenderer, look_at_camera, render_overlay
from configs.files import write_obj
from fitting.config import load_config
from fitting.fitter import FitResult
from fitting.outputs import Scene, Writer, frame_paths, posed_vertices
from fitting.outputs.fits import full_params
from fitting.synthetic import render_views
from fitting.targets import PersonTargets


@pytest.fixture(scope="module")
def meshes(anny_body) -> tuple[list[np.ndarray], np.ndarray]:
    """Two posed Anny meshes (vertices in model space) and the faces."""
    rng = np.random.default_rng(1)
    pose = rng.normal(0, 0.3, (2, 21, 3)).astype(np.float32)
    params = [{"global_orient": np.zeros(3, np.float32), "body_pose": p} for p in pose]
    return list(posed_vertices(anny_body, params)), anny_body.faces.cpu().numpy()


def _frame(verts: list[np.ndarray], size: tuple[int, int]) -> tuple[list[np.ndarray], tuple[float, float]]:
    """Both bodies side by side in front of a camera framing them, at image `size`."""
    shifted = [v + (0.6 * (2 * i - 1), 0.0, 0.3 * i) for i, v in enumerate(verts)]
    cam, focal = look_at_camera(np.concatenate(shifted), size)
    return np.split(cam, len(verts)), (focal, focal)


def test_a_reused_renderer_draws_what_a_fresh_one_draws(meshes):
    verts, faces = meshes
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (240, 320, 3), np.uint8)
    frames = [  # sizes and colours change between frames, and the first comes back
        (_frame(verts, (320, 240)), (320, 240), image, [PALETTE[0], PALETTE[3]]),
        (_frame(verts[:1], (200, 300)), (200, 300), None, [PALETTE[5]]),
        (_frame(verts, (320, 240)), (320, 240), image[..., 0], [PALETTE[1], PALETTE[2]]),
    ]
    with OverlayRenderer() as renderer:
        for (cam, focal), size, background, colors in frames:
            center = (size[0] / 2, size[1] / 2)
            fresh = render_overlay(cam, faces, focal, center, size, background, colors)
            reused = renderer.render(cam, faces, focal, center, size, background, colors)
            assert reused.shape == (size[1], size[0], 3)
            assert np.abs(reused.astype(int) - fresh).max() <= 1
            plain = 255 if background is None else background[..., None] if background.ndim == 2 else background
            assert (fresh != plain).any(2).mean() > 0.05  # the bodies were drawn
        assert len(renderer._renderers) == 2  # one per size, kept
    assert not renderer._renderers  # closed on leaving the block


def test_meshes_are_drawn_as_from_trimesh_makes_them(meshes, monkeypatch):
    import pyrender
    import trimesh

    from body import render

    verts, faces = meshes
    bent = verts[0].copy()
    bent[faces[5]] = bent[faces[5, 0]]  # a degenerate face (zero area): no normal, left out of its vertices'
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=(*PALETTE[1], 1.0))
    for v in (verts[0], bent):
        ours = render._smooth_mesh(pyrender, v, faces, material).primitives[0]
        theirs = pyrender.Mesh.from_trimesh(trimesh.Trimesh(v, faces, process=False), material, smooth=True)
        theirs = theirs.primitives[0]
        for name in ("positions", "normals", "indices"):
            assert np.array_equal(getattr(ours, name), getattr(theirs, name)), name
        assert ours.mode == theirs.mode and ours.color_0 is None and theirs.color_0 is None
    size = (320, 240)
    (cam, focal), image = _frame(verts, size), np.random.default_rng(4).integers(0, 255, (240, 320, 3), np.uint8)
    with OverlayRenderer() as renderer:
        drawn = renderer.render(cam, faces, focal, (160.0, 120.0), size, image, PALETTE[:2])
        monkeypatch.setattr(  # before: a Trimesh per body, its mesh by pyrender
            render,
            "_smooth_mesh",
            lambda pyrender, v, f, m: pyrender.Mesh.from_trimesh(trimesh.Trimesh(v, f, process=False), m, smooth=True),
        )
        before = renderer.render(cam, faces, focal, (160.0, 120.0), size, image, PALETTE[:2])
    assert np.array_equal(drawn, before) and (drawn != image).any(2).mean() > 0.05


def test_overlay_scale_draws_smaller_and_keeps_the_image_size(meshes):
    verts, faces = meshes
    size = (320, 240)
    cam, focal = _frame(verts, size)
    black = np.zeros((240, 320, 3), np.uint8)
    full = render_overlay(cam, faces, focal, (170.0, 110.0), size, black, alpha=1.0)
    with OverlayRenderer(scale=0.5) as renderer:
        half = renderer.render(cam, faces, focal, (170.0, 110.0), size, black, alpha=1.0)
        assert list(renderer._renderers) == [(160, 120)]
    assert half.shape == full.shape and (half != full).any()
    # the same bodies in the same place (sub-pixel), drawn at a quarter of the pixels and upsampled
    full, half = full.astype(float).sum(2), half.astype(float).sum(2)
    rows, cols = np.mgrid[:240, :320]
    for coord in (rows, cols):
        assert abs((full * coord).sum() / full.sum() - (half * coord).sum() / half.sum()) < 0.5
    assert 0.9 < half.sum() / full.sum() < 1.1
    with pytest.raises(ValueError):
        OverlayRenderer(scale=0)


def _scenes(model, out_source: Path) -> list[Scene]:
    """Four frames fitted exactly to known bodies: three of one person, one of two (ids 0 and 3)."""
    rng = np.random.default_rng(2)
    pose = rng.normal(0, 0.2, (5, 21, 3)).astype(np.float32)
    views = render_views(model, pose, None, rng, image_size=(320, 240), focal=300.0)
    results = []
    for i, frame in enumerate(views.frames):
        params = {k: v[i] for k, v in views.params.items()}
        projected = {"body25": frame.points["body25"][0][:, :2]}
        results.append((frame, FitResult(params, np.zeros(1), np.zeros(1, int), {}, np.zeros(3), projected=projected)))
    image = rng.integers(0, 255, (240, 320, 3), np.uint8)
    scenes = [
        Scene(f"frame_{i}", out_source / f"frame_{i}.png", [PersonTargets(0, f)], [r], image)
        for i, (f, r) in enumerate(results[:3])
    ]
    (f0, r0), (f1, r1) = results[3:]
    scenes.append(Scene("pair", out_source / "pair.png", [PersonTargets(0, f0), PersonTargets(3, f1)], [r0, r1], image))
    return scenes


def test_a_writer_draws_every_frame_with_one_renderer(anny_body, tmp_path, one_thread):
    scenes = _scenes(anny_body, Path("/in"))
    (tmp_path / "frame_2.obj").mkdir()  # frame_2's files cannot be written: its old mesh is a folder
    writer = Writer(tmp_path, anny_body, load_config(None, ["output.max_reprojection=100"]))
    writer.write(scenes[:2])
    renderer = writer._renderer
    writer.write(scenes[2:])
    assert writer._renderer is renderer and list(renderer._renderers) == [(320, 240)]
    for scene in (scenes[0], scenes[1], scenes[3]):  # each overlay as a fresh renderer draws it
        meshes = posed_vertices(anny_body, [full_params(anny_body, r.params) for r in scene.results])  # as the Writer
        colors = [PALETTE[p.person_id % len(PALETTE)] for p in scene.people]
        frame = scene.people[0].targets
        fresh = render_overlay(
            meshes, anny_body.faces.cpu().numpy(), frame.focal, frame.center, (320, 240), scene.image[..., ::-1], colors
        )
        written = iio.imread(frame_paths(tmp_path, scene.key)["png"])
        assert np.abs(written.astype(int) - fresh).max() <= 1
        for person, verts in zip(scene.people, meshes):  # the OBJs as write_obj writes the faces array
            written = frame_paths(tmp_path, scene.key_of(person.person_id))["obj"].read_text().splitlines()
            write_obj(tmp_path / "expected.obj", verts, anny_body.faces.cpu().numpy())
            expected = (tmp_path / "expected.obj").read_text().splitlines()
            assert written[len(verts) :] == expected[len(verts) :] and len(written) == len(expected)
            v = np.array([line.split()[1:] for line in written[: len(verts)]], float)  # posed in another batch
            assert np.abs(v - verts).max() < 2e-6
    summary = writer.finish(0.0).to_dict()
    assert writer._renderer is None and not renderer._renderers  # freed at the end of the run
    assert sorted(summary["fitted"]) == ["frame_0", "frame_1", "pair.person_0", "pair.person_3"]
    assert summary["failed"]["frame_2"].startswith("writing outputs failed: IsADirectoryError")
    assert not frame_paths(tmp_path, "frame_2")["npz"].exists()
    with np.load(frame_paths(tmp_path, "pair.person_3")["npz"]) as f:
        assert json.loads(str(f["frame_people"]))["written"] == [0, 3]
