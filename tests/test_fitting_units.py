"""Fitting building blocks: batched L-BFGS, camera, losses, config, sparse model (the GMM: test_prior_gmm)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from fitting import losses
from fitting.camera import init_translation, initial_orientation, intrinsics, project, torso_view
from fitting.optimize import LbfgsOptions, minimize


def _rosenbrock(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    a = 1.0 + 0.1 * rows.to(x)[:, None]  # each row its own problem
    return ((a - x[:, :-1]) ** 2 + 100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2).sum(-1)


def test_batched_lbfgs_rows_are_independent_and_match_torch():
    x0 = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    opts = LbfgsOptions(max_iter=200, rel_tolerance=1e-14, tolerance_grad=1e-9)
    batch = minimize(_rosenbrock, x0, opts)
    alone = []
    for i in range(6):
        single = minimize(lambda x, rows, i=i: _rosenbrock(x, rows + i), x0[i : i + 1], opts)
        assert torch.equal(single.x[0], batch.x[i])  # same trajectory whatever else is in the batch
        assert single.iterations.item() == batch.iterations[i].item()
        alone.append(single.evaluations)
    # Rows do not wait for each other's line searches: each call evaluates every running row once,
    # so the batch takes as many calls as its slowest row alone (lock-step iterations would take more).
    assert len(set(alone)) > 1 and batch.evaluations == max(alone)
    # Row 0 is the classic Rosenbrock: same minimum and iteration count as torch.optim.LBFGS.
    assert torch.allclose(batch.x[0], torch.ones(5, dtype=torch.float64), atol=1e-6)
    x = x0[:1].clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x],
        lr=1,
        max_iter=200,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-9,
        tolerance_change=1e-14,
        history_size=10,
    )

    def closure():
        opt.zero_grad()
        loss = _rosenbrock(x, torch.zeros(1, dtype=torch.long)).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert abs(opt.state[x]["n_iter"] - batch.iterations[0].item()) <= 3


def test_lbfgs_stops_each_row_on_its_own_tolerance():
    target = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    scale = torch.tensor([1.0, 1e4])

    def fn(x, rows):
        return (scale[rows, None] * (x - target[rows]) ** 2).sum(-1) + 1.0

    out = minimize(fn, torch.zeros(2, 2), LbfgsOptions(max_iter=50, rel_tolerance=1e-6))
    assert torch.allclose(out.x, target, atol=1e-3)
    assert (out.iterations < 10).all()


def test_camera_intrinsics_projection_and_torso_depth():
    (fx, fy), (cx, cy) = intrinsics((640, 480))
    assert fx == fy == pytest.approx(320 / math.tan(math.radians(22.5))) and (cx, cy) == (320, 240)
    assert intrinsics((640, 480), focal=(800, 810), center=(300, 200)) == ((800, 810), (300, 200))
    f, c = torch.tensor([[1000.0, 1000.0]]), torch.tensor([[500.0, 400.0]])
    assert torch.allclose(project(torch.tensor([[[0.2, -0.1, 2.0]]]), f, c), torch.tensor([[[600.0, 350.0]]]))
    # A torso 0.5 m long (shoulders above hips) seen 100 px long at f = 1000 is 5 m away.
    body = torch.tensor([[[-0.2, -0.5, 0.0], [0.2, -0.5, 0.0], [-0.2, 0.0, 0.0], [0.2, 0.0, 0.0]]])
    xy = torch.tensor([[[480.0, 300.0], [520.0, 300.0], [480.0, 400.0], [520.0, 400.0]]])
    t = init_translation(xy, torch.ones(1, 4), body, (torch.tensor([0, 1]), torch.tensor([2, 3])), f, c)
    assert t[0, 2].item() == pytest.approx(5.0, rel=1e-4)
    moved = project(body + t[:, None], f, c)
    assert torch.allclose(moved.mean(1), xy.mean(1), atol=1e-3)
    # Upright facing the camera is 180 deg about x; turned away (yaw pi) mirrors x and z instead.
    from body.rotations import axis_angle_to_matrix

    r_cam, r_away = axis_angle_to_matrix(initial_orientation(torch.zeros(2), torch.tensor([0.0, math.pi])))
    assert torch.allclose(r_cam, torch.diag(torch.tensor([1.0, -1.0, -1.0])), atol=1e-6)
    assert torch.allclose(r_away, torch.diag(torch.tensor([-1.0, -1.0, 1.0])), atol=1e-5)


def test_torso_view_reads_roll_and_yaw_off_2d_shoulders():
    # Points: left shoulder, right shoulder, left hip, right hip; torso 100 px, frontal width 40 px.
    torso = (torch.tensor([0, 1]), torch.tensor([2, 3]))
    xy = torch.tensor(
        [
            [[520.0, 300], [480, 300], [520, 400], [480, 400]],  # front, upright
            [[480.0, 300], [520, 300], [480, 400], [520, 400]],  # back
            [[503.0, 300], [497, 300], [503, 400], [497, 400]],  # side view
            [[400.0, 480], [400, 520], [500, 480], [500, 520]],  # front, lying with the head to the image left
        ]
    )
    view = torso_view(
        xy, torch.ones(4, 4), torso, (torch.tensor([0]), torch.tensor([1])), width_ratio=0.4, side_cos=0.87
    )
    assert torch.allclose(view.yaw, torch.tensor([0.0, math.pi, math.acos(0.15), 0.0]), atol=1e-3)
    assert view.ambiguous.tolist() == [False, False, True, False]
    assert torch.allclose(view.roll, torch.tensor([0.0, 0.0, 0.0, -math.pi / 2]), atol=1e-5)


def test_losses():
    r2 = torch.tensor([0.0, 1.0, 1e8])
    gm = losses.geman_mcclure(r2, rho=100.0)
    assert gm[0] == 0 and gm[1] == pytest.approx(1.0, rel=1e-3) and gm[2] == pytest.approx(1e4, rel=1e-3)
    pose = torch.zeros(2, 21, 3)
    pose[1, 17, 1] = -1.0  # left elbow flexed the natural way (-y)
    natural = losses.bending(pose)
    pose[1, 17, 1] = 1.0  # hyper-extended
    assert natural[0] == pytest.approx(4.0) and natural[1] < 4.0 < losses.bending(pose)[1]
    x = torch.tensor([[[0.0], [1.0], [3.0], [3.0]]])
    link = torch.tensor([[1.0, 0.5, 1.0]])
    assert torch.equal(losses.acceleration(x, link), torch.tensor([[0.5, 2.0]]))
    steady = torch.tensor([[[0.0], [1.0], [2.0], [3.0]]])  # constant velocity costs nothing
    assert torch.equal(losses.acceleration(steady, link), torch.zeros(1, 2))


def test_video_shape_ignores_diverged_fits():
    from types import SimpleNamespace

    from fitting.fitter import FitResult
    from fitting.tracks import SequenceFit

    def result(shape: float, loss: float) -> FitResult:
        return FitResult({"shape": np.full(2, shape)}, np.array([loss]), np.array([1]), {}, np.zeros(3))

    fits = [result(1.0, 0.5), result(float("nan"), float("nan")), result(3.0, 0.5)]
    options = SimpleNamespace(video=SimpleNamespace(shape_frames=3))
    fitter = SimpleNamespace(
        fit_frames=lambda targets: fits[: len(targets)], device="cpu", dtype=torch.float64, options=options
    )
    track = SequenceFit([(i, None) for i in range(3)], fitter, lambda _: None)
    assert torch.equal(track._shape(), torch.tensor([2.0, 2.0], dtype=torch.float64))
    fits[0] = fits[2] = fits[1]
    with pytest.raises(ValueError, match="no shape frame converged"):
        track._shape()


def test_inputs_of_a_keypoints_detect_folder(tmp_path):
    from fitting.inputs import collect

    for name in (
        "a_keypoints.json",
        "summary.json",
        "a_overlay.png",
        "clip_overlay.mp4",
        "b.png",
        "notes.txt",
        "x.jpg",
        "x.png",
        "clip.avi",
        "clip_000000.jpg",
        ".hidden.jpg",
    ):
        (tmp_path / name).write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    items, passed = collect(tmp_path)
    # every input under its own key (extension included), never two on one key
    assert [(i.name, i.kind) for i in items] == [
        ("a", "openpose"),
        ("b.png", "image"),
        ("clip.avi", "video"),
        ("clip_000000.jpg", "image"),
        ("x.jpg", "image"),
        ("x.png", "image"),
    ]
    # every other entry is reported with its reason, broken links included
    assert set(passed) == {
        "summary.json",
        "a_overlay.png",
        "clip_overlay.mp4",
        "notes.txt",
        ".hidden.jpg",
        "sub",
        "gone.jpg",
    }
    assert "broken link" in passed["gone.jpg"] and "folder" in passed["sub"]


def test_resume_and_summary_outputs(tmp_path):
    from fitting.outputs import Summary, saved_stamp

    np.savez(tmp_path / "good.npz", shape=np.zeros(2), input="a/good.jpg", config_digest="abc")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "good.npz").read_bytes()[:60])
    (tmp_path / "empty.npz").write_bytes(b"")
    stamps = [saved_stamp(tmp_path, n) for n in ("good", "cut", "empty", "missing")]
    assert stamps == [{"input": "a/good.jpg", "config_digest": "abc", "frame_people": ""}, None, None, None]
    summary = Summary(
        fitted=["a", "b"],
        reprojection_px={"a": 2.0, "b": float("nan")},
        reprojection_rel={"a": 0.01, "b": float("nan")},
    )
    summary.write(tmp_path / "summary.json")
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["reprojection_px"] == {"a": 2.0, "b": None} and saved["mean_reprojection_px"] == 2.0


def test_reprojection_error_counts_confident_points_only():
    from fitting.metrics import reprojection_error

    points = np.array([[0.0, 0.0, 0.9], [0.0, 100.0, 0.9], [0.0, 900.0, 0.1]])
    projected = np.array([[3.0, 4.0], [0.0, 100.0], [0.0, 400.0]])
    err, frac = reprojection_error(projected, points, np.ones(3))
    assert err == pytest.approx(2.5) and frac == pytest.approx(0.025)


def test_orphan_temporaries_are_told_from_live_writes(tmp_path):
    import subprocess
    import sys

    from configs.files import atomic_path, is_orphan_temporary

    with atomic_path(tmp_path / "frame.npz") as tmp:
        assert not is_orphan_temporary(tmp)  # this process is alive
        assert tmp.suffix == ".npz"  # writers that go by the extension still see it
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / f".bodyfit-tmp-{int(dead.stdout)}-abcd1234-frame.npz"
    orphan.touch()
    assert is_orphan_temporary(orphan) and not is_orphan_temporary(tmp_path / "frame.npz")
    # a user's hidden file that looks like name.pid.random.ext is never taken for ours
    assert not is_orphan_temporary(tmp_path / f".holiday.{int(dead.stdout)}.final.jpg")


def test_detections_are_screened_before_anything_uses_them():
    import keypoints
    from fitting.config import load_config
    from fitting.targets import people_targets

    rng = np.random.default_rng(0)
    body = np.concatenate([rng.uniform(100, 500, (1, 25, 2)), np.full((1, 25, 1), 0.9)], -1).astype(np.float32)
    body[0, 0] = (50_000.0, 200.0, 0.9)  # far right of a 640 px image
    body[0, 1] = (3e38, 3e38, 0.9)
    body[0, 2] = (np.nan, 10.0, 0.9)
    body[0, 3, 2] = 1e6  # an absurd confidence
    kp = keypoints.Keypoints("body25", body, image_size=(640, 480))
    (person,), reason = people_targets(kp, None, load_config())
    targets = person.targets
    assert reason is None and targets.dropped == 2  # the two finite points far outside; NaN is not a detection
    pts, _ = targets.points["body25"]
    assert (pts[:3, 2] == 0).all() and (pts[:3, :2] == 0).all()  # ignored, not fitted
    assert pts[3, 2] == 1.0 and (pts[:, 2] <= 1).all()
    body[0, :, :2] = np.nan  # nothing usable left: the reason says why
    (person,), _ = people_targets(keypoints.Keypoints("body25", body, image_size=(640, 480)), None, load_config())
    reason = person.reason
    assert reason.startswith("keypoints are all zero") and "25 NaN/inf" in reason


def test_obj_text_is_one_line_per_vertex_and_face_one_based(tmp_path):
    import trimesh

    from configs.files import write_obj

    verts = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, -1.25, 1 / 3]], np.float32)
    write_obj(tmp_path / "m.obj", verts, np.array([[0, 1, 2]]))
    text = (tmp_path / "m.obj").read_text()
    assert text.splitlines() == [
        "v 0.000000 0.000000 0.000000",
        "v 1.000000 0.000000 0.000000",
        "v 0.000000 -1.250000 0.333333",
        "f 1 2 3",
    ]
    mesh = trimesh.load(tmp_path / "m.obj", process=False)
    assert np.allclose(mesh.vertices, verts, atol=1e-6) and (mesh.faces == [[0, 1, 2]]).all()
