"""`video.output_smoothing`: a fitted window's motion averaged over time within linked runs of
frames, held frames kept, steady motion kept, jitter taken out."""

from __future__ import annotations

import torch

from body.rotations import axis_angle_to_matrix, geodesic_angle
from fitting.smoothing import linked_runs, smooth_motion


def _window(t: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """One row's variables (1, T, ...): a steady walk (linear translation, turning at a constant
    rate) with per-frame jitter on everything."""
    g = torch.Generator().manual_seed(seed)
    steps = torch.arange(t, dtype=torch.float64)[:, None]
    jitter = lambda d, s: s * torch.randn(t, d, generator=g, dtype=torch.float64)  # noqa: E731
    return {
        "pose": (0.3 + jitter(32, 0.2))[None],
        "global_orient": (steps * torch.tensor([0.0, 0.05, 0.0], dtype=torch.float64) + jitter(3, 0.03))[None],
        "transl": (steps * torch.tensor([0.04, 0.0, 0.01], dtype=torch.float64) + jitter(3, 0.02))[None],
        "shape": torch.zeros(1, 6, dtype=torch.float64),
        "jaw_pose": jitter(3, 0.1)[None],
    }


def _second_difference(x: torch.Tensor) -> float:
    return float((x[2:] - 2 * x[1:-1] + x[:-2]).norm(dim=-1).mean())


def test_linked_runs_split_where_frames_are_not_linked():
    assert linked_runs(torch.tensor([1.0, 1.0, 0.0, 0.25, 1.0])) == [(0, 3), (3, 6)]
    assert linked_runs(torch.ones(0)) == [(0, 1)]


def test_smoothing_takes_jitter_out_and_keeps_steady_motion_held_frames_and_the_rest():
    t = 40
    v = _window(t)
    link = torch.ones(1, t - 1, dtype=torch.float64)
    frozen = torch.zeros(1, t, dtype=torch.bool)
    frozen[0, :8] = True  # the previous window's overlap
    out = smooth_motion(v, link, frozen, 1.5)
    for k in ("pose", "global_orient", "transl"):
        assert torch.equal(out[k][0, :8], v[k][0, :8]), k  # held frames keep their values
        assert _second_difference(out[k][0, 8:]) < 0.35 * _second_difference(v[k][0, 8:]), k
    assert torch.equal(out["jaw_pose"], v["jaw_pose"]) and torch.equal(out["shape"], v["shape"])
    assert v["pose"].data_ptr() != out["pose"].data_ptr()  # the caller's variables are not changed in place

    steady = {k: x.clone() for k, x in _window(t).items()}
    steady["transl"] = (torch.arange(t, dtype=torch.float64)[:, None] * 0.05)[None].expand(1, t, 3).clone()
    kept = smooth_motion(steady, link, torch.zeros(1, t, dtype=torch.bool), 1.5)["transl"]
    assert torch.allclose(kept[0, 5:-5], steady["transl"][0, 5:-5], atol=1e-9)  # a Gaussian keeps a line
    turned = geodesic_angle(axis_angle_to_matrix(out["global_orient"][0]), axis_angle_to_matrix(v["global_orient"][0]))
    assert float(turned.max()) < 0.15  # radians: the orientation is averaged, not flipped


def test_runs_are_smoothed_apart():
    t = 20
    v = _window(t)
    v["transl"][0, 10:] += 5.0  # a gap of several frames: another place entirely
    link = torch.ones(1, t - 1, dtype=torch.float64)
    link[0, 9] = 0.0
    out = smooth_motion(v, link, torch.zeros(1, t, dtype=torch.bool), 2.0)["transl"][0]
    assert float(out[:10, 0].max()) < 1.0 and float(out[10:, 0].min()) > 4.0  # nothing blurred across the gap
