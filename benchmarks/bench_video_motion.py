"""Do the temporal terms keep up with moving people? Synthetic walkers crossing the view sideways.

    python benchmarks/bench_video_motion.py [--frames 40] [--speeds 1.2,3,10] [--threads 2] [key.sub=value ...]

One Anny body (one shape) swings its legs while its pelvis moves sideways at a constant speed
across the middle 3.6 m of the view (at most --frames frames), 5 m from a camera (f = 1100 px,
1000x600 px, 30 fps), BODY_25 with 2 px noise and 5 % of the points dropped. Each walk is fitted
as a video track (`fitting.tracks.SequenceFit`: the window's frames alone, then the window
refined with the temporal terms of `video.schedule`) and, for comparison, frame by frame at the
true shape (`Fitter.fit_frames`, no temporal terms). Prints the mean 2D reprojection error (px),
the 3D joint error (MPJPE, mm, camera frame: the translation counts) and the joints' acceleration
error (mm/frame^2, camera frame) of both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fit_data import fitted_joints  # noqa: E402
from fitting.config import load_config  # noqa: E402
from fitting.fitter import FitResult  # noqa: E402
from fitting.metrics import reprojection_error  # noqa: E402
from fitting.pipeline import build_fitter  # noqa: E402
from fitting.synthetic import Views, render_views  # noqa: E402
from fitting.tracks import SequenceFit  # noqa: E402

FPS, DEPTH, SIZE = 30.0, 5.0, (1000, 600)


def walker(model, speed: float, frames: int, seed: int) -> Views:
    """A body crossing the view from left to right at `speed` m/s (centred on the middle frame)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / FPS
    pose = np.zeros((frames, 21, 3), np.float32)
    pose[:, 0, 0], pose[:, 1, 0] = 0.4 * np.sin(2 * np.pi * t), -0.4 * np.sin(2 * np.pi * t)  # hips swing
    x = speed * (t - t.mean())
    transl = np.stack([x, np.full(frames, 0.1), np.full(frames, DEPTH)], 1)
    shape = np.tile(np.array([[0.5, 0.5, 0.5, 0.5, 0.6, 0.5]], np.float32), (frames, 1))[:, : model.num_shape]
    return render_views(
        model, pose, None, rng, noise_px=2, drop=0.05, image_size=SIZE, focal=1100.0, azimuth_deg=(90, 90),
        elevation_deg=(0, 0), shape=shape, transl=transl,
    )  # fmt: skip


def track(fitter, views: Views) -> list[FitResult]:
    """The walk fitted as one video track."""
    fit = SequenceFit(list(enumerate(views.frames)), fitter, lambda _: None)
    out: dict[int, FitResult] = {}
    while fit.next_frame != float("inf"):
        out.update(fit.step())
    return [out[i] for i in range(len(views.frames))]


def scores(model, views: Views, results: list[FitResult]) -> tuple[float, float, float]:
    """Mean reprojection (px), MPJPE (mm) and acceleration error (mm/frame^2), camera frame."""
    px = [
        reprojection_error(r.projected["body25"], f.points["body25"][0], f.points["body25"][1])[0]
        for r, f in zip(results, views.frames)
    ]
    joints = fitted_joints(model, results)
    mpjpe = np.linalg.norm(joints - views.joints, axis=-1).mean()
    accel = np.linalg.norm(np.diff(joints, 2, 0) - np.diff(views.joints, 2, 0), axis=-1).mean()
    return float(np.mean(px)), 1000 * float(mpjpe), 1000 * float(accel)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--speeds", default="1.2,3,10", help="m/s, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="fit config overrides, e.g. stages.refine.weights.smooth_pose=30")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(overrides=["body.model=anny", *args.overrides])
    fitter = build_fitter(cfg)
    print("| speed m/s | fit | reprojection px | MPJPE mm (camera frame) | accel error mm/frame^2 |")
    print("|---|---|---|---|---|")
    for i, speed in enumerate(float(s) for s in args.speeds.split(",")):
        views = walker(fitter.model, speed, min(args.frames, int(3.6 / speed * FPS)), seed=i)
        shape = torch.as_tensor(views.params["shape"][0], dtype=fitter.dtype)
        for name, results in (
            ("each frame alone", fitter.fit_frames(views.frames, shape=shape)),
            ("video track", track(fitter, views)),
        ):
            px, mpjpe, accel = scores(fitter.model, views, results)
            print(f"| {speed:g} | {name} | {px:.1f} | {mpjpe:.0f} | {accel:.1f} |", flush=True)


if __name__ == "__main__":
    main()
