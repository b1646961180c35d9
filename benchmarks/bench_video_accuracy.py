"""Video fitting on held-out actors' mocap with its real root motion: per frame, per sequence, lifted.

    python benchmarks/bench_video_accuracy.py [--clips 2] [--seed 0] [--threads 2] [--lifter PATH] [--rows A,B]
        [--sequences out/temporal/sequences] [--mocap ../shared/data/mocap] [key.sub=value ...]

Clips of 60 frames at 30 fps are cut from the validation actors' sequences (`prior.data.sequences`
val.npz: `prior.data.build.DEFAULT_VAL_SUBJECTS`, held out of every network's training; built from
--mocap when missing), each where the pelvis travels at least --min-travel metres (walking,
turning), put on Anny with one random adult shape per clip and its real root trajectory, filmed by
one static camera at a random azimuth, 1.0-1.6 m above the floor, 4-6 m from the clip's mean pelvis
position and aimed at it (1280x720 px, f = 1000 px), projected to BODY_25 with 5 px noise and 20 % of
the points dropped per frame (points outside the image are undetected). Rows: the single-frame
initialiser alone (its regressed answer); the stills fit (each frame alone, the image path); the
temporal lifter alone (`video.lifter`); the sequence fit (the video path, `fitting.tracks.SequenceFit`)
from each `video.start`. Prints a markdown table over all frames: PA-MPJPE mean and 90th percentile,
MPJPE (pelvis aligned), acceleration error of the pelvis-centred joints, all over the 22 body joints,
and wall-clock seconds per frame.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fit_data import fitted_joints  # noqa: E402
from body.rotations import axis_angle_to_matrix, matrix_to_axis_angle  # noqa: E402
from body.shapes import random_shapes  # noqa: E402
from fitting.config import load_config, load_options  # noqa: E402
from fitting.fitter import FitResult, Fitter  # noqa: E402
from fitting.hypotheses import LearnedStart  # noqa: E402
from fitting.metrics import mpjpe, pa_mpjpe  # noqa: E402
from fitting.pipeline import build_fitter  # noqa: E402
from fitting.synthetic import Views, render_views  # noqa: E402
from fitting.tracks import SequenceFit  # noqa: E402
from prior.data.sequences import Sequences  # noqa: E402

FRAMES, SIZE, FOCAL = 60, (1280, 720), 1000.0
Y_DOWN = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])  # render_views' turn at azimuth 0


def clips(seqs: Sequences, n: int, min_travel: float, rng: np.random.Generator) -> list[np.ndarray]:
    """n frame ranges (60 frames at 30 fps) of different segments whose pelvis travels >= min_travel m."""
    found = []
    for s in rng.permutation(len(seqs.length)):
        if seqs.fps[s] != 30 or seqs.length[s] < FRAMES:
            continue
        first = seqs.start[s] + rng.integers(0, seqs.length[s] - FRAMES + 1)
        frames = np.arange(first, first + FRAMES)
        path = seqs.transl[frames][:, [0, 2]]
        if np.linalg.norm(np.diff(path, axis=0), axis=1).sum() >= min_travel:
            found.append(frames)
        if len(found) == n:
            return found
    raise ValueError(f"only {len(found)} held-out clips move {min_travel} m; lower --min-travel or --clips")


def film(model, seqs: Sequences, frames: np.ndarray, rng: np.random.Generator) -> Views:
    """One clip on Anny seen by a static camera (module docstring)."""
    kw = dict(dtype=model.dtype)
    pelvis = torch.as_tensor(seqs.transl[frames], **kw)  # world, y up
    target = pelvis.mean(0)
    az, dist, height = rng.uniform(-math.pi, math.pi), rng.uniform(4.0, 6.0), rng.uniform(1.0, 1.6)
    eye = torch.stack([target[0] + dist * math.sin(az), torch.tensor(height, **kw), target[2] + dist * math.cos(az)])
    forward = (target - eye) / (target - eye).norm()
    right = torch.linalg.cross(forward, torch.tensor([0.0, 1.0, 0.0], **kw))
    right = right / right.norm()
    world_to_camera = torch.stack([right, torch.linalg.cross(forward, right), forward])
    orient = world_to_camera @ axis_angle_to_matrix(torch.as_tensor(seqs.root_orient[frames], **kw))
    pose = torch.as_tensor(seqs.body_pose[frames], **kw)
    shape = torch.as_tensor(random_shapes(model, 1, rng), **kw).expand(FRAMES, -1)
    with torch.no_grad():
        rest = model(global_orient=matrix_to_axis_angle(orient), body_pose=pose, shape=shape).joints[:, 0]
    transl = (pelvis - eye) @ world_to_camera.T - rest
    root = matrix_to_axis_angle(Y_DOWN.to(orient) @ orient)  # render_views turns it back by Y_DOWN
    return render_views(
        model, pose.numpy(), root.numpy(), rng, noise_px=5.0, drop=0.2, image_size=SIZE, focal=FOCAL,
        azimuth_deg=(0.0, 0.0), elevation_deg=(0.0, 0.0), shape=shape.numpy(), transl=transl.numpy(),
    )  # fmt: skip


def initialiser_alone(fitter: Fitter, views: Views) -> np.ndarray:
    pred = LearnedStart(fitter.initialiser, fitter.problem([[f] for f in views.frames])).prediction
    with torch.no_grad():
        return fitter.model(global_orient=pred.global_orient, body_pose=pred.body_pose, shape=pred.shape).joints


def lifter_alone(fitter: Fitter, views: Views) -> np.ndarray:
    lifted = fitter.lift(views.frames, list(range(len(views.frames))))
    shape = lifted.shape.expand(len(views.frames), -1)
    with torch.no_grad():
        return fitter.model(global_orient=lifted.global_orient, body_pose=lifted.body_pose, shape=shape).joints


def sequence_fit(fitter: Fitter, views: Views) -> np.ndarray:
    fit = SequenceFit(list(enumerate(views.frames)), fitter, lambda _: None)
    out: dict[int, FitResult] = {}
    while fit.next_frame != math.inf:
        out.update(fit.step())
    return fitted_joints(fitter.model, [out[i] for i in range(len(views.frames))])


def stills_fit(fitter: Fitter, views: Views) -> np.ndarray:
    return fitted_joints(fitter.model, fitter.fit_frames(views.frames))


def accel_error(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-frame (N-2,) mean joint error of the second differences of pelvis-centred joints (N, J, 3)."""
    p, t = pred - pred[:, :1], true - true[:, :1]
    return np.linalg.norm(np.diff(p, 2, 0) - np.diff(t, 2, 0), axis=-1).mean(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=2, help="60-frame clips (~4 min each on 2 CPU cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-travel", type=float, default=0.5, help="metres the pelvis travels in a clip")
    parser.add_argument("--lifter", default=None, help="temporal lifter checkpoint (default: video.lifter)")
    parser.add_argument("--sequences", default="out/temporal/sequences")
    parser.add_argument("--mocap", default="../shared/data/mocap")
    parser.add_argument("--rows", default="", help="only the rows whose names contain one of these (comma-separated)")
    parser.add_argument("overrides", nargs="*", help="fit config overrides, e.g. optimizer.max_iter=20")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from prior.initialiser.temporal_train import load_config as lifter_config
    from prior.initialiser.temporal_train import sequences_folder

    data = lifter_config(overrides=[f"data.sequences={args.sequences}", f"data.mocap={args.mocap}"])
    val = Sequences.read(sequences_folder(data) / "val.npz")
    lifter = [f"video.lifter={args.lifter}"] if args.lifter else []
    base = build_fitter(load_config(overrides=["body.model=anny", *lifter, *args.overrides]))
    fitters = {
        start: Fitter(base.model, base.space, load_options(overrides=["body.model=anny", *lifter, *args.overrides,
                                                                     f"video.start={start}"]))
        for start in ("initialiser", "lifter")
    }  # fmt: skip
    rows: dict[str, Callable[[Views], np.ndarray]] = {
        "single-frame initialiser alone": lambda v: initialiser_alone(base, v),
        "stills fit (each frame alone)": lambda v: stills_fit(base, v),
        "temporal lifter alone": lambda v: lifter_alone(base, v),
        "sequence fit, video.start=initialiser": lambda v: sequence_fit(fitters["initialiser"], v),
        "sequence fit, video.start=lifter": lambda v: sequence_fit(fitters["lifter"], v),
    }
    if args.rows:
        rows = {k: v for k, v in rows.items() if any(part in k for part in args.rows.split(","))}
    rng = np.random.default_rng(args.seed)
    chosen = clips(val, args.clips, args.min_travel, rng)
    names = ", ".join(str(val.clips[val.clip[np.searchsorted(val.start, c[0], "right") - 1]]) for c in chosen)
    print(f"{len(chosen)} clips x {FRAMES} frames: {names}\n", flush=True)
    got: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {k: [] for k in rows}
    seconds = dict.fromkeys(rows, 0.0)
    for frames in chosen:
        views = film(base.model, val, frames, rng)
        for name, run in rows.items():
            started = time.perf_counter()
            joints = np.asarray(run(views))[:, :22]
            seconds[name] += time.perf_counter() - started
            truth = views.joints
            got[name].append((pa_mpjpe(joints, truth), mpjpe(joints, truth), accel_error(joints, truth)))
            print(f"  {name}: PA-MPJPE {1000 * got[name][-1][0].mean():.1f} mm", flush=True)
    print("| method | PA-MPJPE mm | PA-MPJPE p90 mm | MPJPE mm | accel mm/frame^2 | s/frame |")
    print("|---|---|---|---|---|---|")
    for name, parts in got.items():
        pa, mp, acc = (1000 * np.concatenate(x) for x in zip(*parts))
        s = seconds[name] / (FRAMES * len(chosen))
        print(
            f"| {name} | {pa.mean():.1f} | {np.percentile(pa, 90):.1f} | {mp.mean():.1f} | {acc.mean():.1f} | {s:.3f} |"
        )


if __name__ == "__main__":
    main()
