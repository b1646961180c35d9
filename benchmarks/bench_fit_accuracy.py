"""Fitting accuracy on held-out mocap: start hypotheses x pose priors (VPoser, none, GMM).

    python benchmarks/bench_fit_accuracy.py [--poses 128] [--seed 0] [--dataset DIR] [--methods vposer,none,gmm]
                                            [--starts HYPS[@STAGES],...] [key.sub=value ...]

Poses of two actors held out from prior and initialiser training
(`fit_data.BENCHMARK_ACTORS`) are put on Anny with random adult shapes, seen
from a random direction by a known camera (f = 1100 px, 1000x1000 px, 3-6 m
away), projected to BODY_25 keypoints with 5 px Gaussian noise and 20 % of the
points dropped, and fitted. Rows: the learned initialiser alone (no fitting; a
multi-hypothesis one also by the hypothesis closest to the truth, an oracle),
then every start setting (`--starts`: start hypotheses and schedule; default the
torso start with SMPLify-X's five stages, and the learned initialiser on the
config's schedule) with every prior. The GMM (8 full-covariance components, as
SMPLify's) is fitted on the prior's training
poses. Prints a markdown table: MPJPE after aligning the pelvis, PA-MPJPE
(Procrustes) mean and 90th percentile, over the 22 body joints, in mm; seconds
and L-BFGS iterations per frame; how often each start hypothesis won.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import body  # noqa: E402
from benchmarks.fit_data import FIVE_STAGES, fitted_joints, held_out_views, prior_dataset  # noqa: E402
from fitting.config import load_config, load_options  # noqa: E402
from fitting.fitter import Fitter  # noqa: E402
from fitting.hypotheses import LearnedStart  # noqa: E402
from fitting.metrics import mpjpe, pa_mpjpe  # noqa: E402
from fitting.options import FitOptions  # noqa: E402
from fitting.priors import load_pose_space  # noqa: E402
from prior.pose_spaces import GmmSpace, PoseSpace  # noqa: E402
from prior.vposer.gmm import fit_gmm  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--poses", type=int, default=128, help="held-out poses to fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", help="folder with train.npz and val.npz (default: the prior's)")
    parser.add_argument("--methods", default="vposer,none,gmm")
    parser.add_argument(
        "--starts",
        default=f"torso+side_view_twin@{'+'.join(FIVE_STAGES)},initialiser",
        help="comma-separated start settings, each fitted with every prior: HYPOTHESES[@STAGES], both joined "
        "by + (init.hypotheses and schedule; without @, the config's schedule)",
    )
    parser.add_argument("--gmm-poses", type=int, default=30000, help="training poses used by the GMM's EM")
    parser.add_argument("overrides", nargs="*", help="fit config overrides, e.g. optimizer.max_iter=20")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    folder = prior_dataset(args.dataset)
    with np.load(folder / "train.npz") as train:
        train_poses = train["body_pose"]
    cfg = load_config(None, args.overrides)
    model = body.create("anny")
    views = held_out_views(model, folder, args.poses, rng)
    print(f"{len(views.frames)} held-out poses from {folder}; {len(train_poses)} training poses", flush=True)
    rows = []
    fitter = Fitter(model, PoseSpace(), FitOptions.of(cfg))
    t = time.perf_counter()
    base = fitter.problem([[f] for f in views.frames])
    pred = LearnedStart(fitter.initialiser, base).prediction
    seconds = time.perf_counter() - t
    with torch.no_grad():
        alone = model(global_orient=pred.global_orient, body_pose=pred.body_pose, shape=pred.shape).joints[:, :22]
    rows.append(("-", "initialiser alone", *_errors(alone.numpy(), views.joints), seconds, 0.0, ""))
    if (k := 1 + pred.others_pose.shape[1]) > 1:
        orient, pose = pred.every()
        with torch.no_grad():
            every = model(
                global_orient=orient.flatten(0, 1),
                body_pose=pose.flatten(0, 1),
                shape=pred.shape.repeat_interleave(k, 0),
            ).joints[:, :22]
        every = every.unflatten(0, (len(orient), k)).numpy()
        pa = np.stack([pa_mpjpe(every[:, i], views.joints) for i in range(k)], 1)
        best = every[np.arange(len(every)), pa.argmin(1)]
        name = f"initialiser alone, closest of its {k} hypotheses (oracle)"
        rows.append(("-", name, *_errors(best, views.joints), seconds, 0.0, ""))
    for method in args.methods.split(","):
        if method == "gmm":
            sub = train_poses[rng.choice(len(train_poses), min(args.gmm_poses, len(train_poses)), replace=False)]
            t = time.perf_counter()
            space: PoseSpace = GmmSpace(fit_gmm(sub.reshape(len(sub), -1), components=8, seed=args.seed))
            print(f"GMM fitted in {time.perf_counter() - t:.0f} s", flush=True)
        else:
            space = load_pose_space(method, cfg.prior.path if method == "vposer" else None)
        for starts in args.starts.split(","):
            names, _, stages = starts.partition("@")
            names = names.split("+")
            settings = [f"init.hypotheses=[{','.join(names)}]"] + (
                [f"schedule=[{stages.replace('+', ',')}]"] if stages else []
            )
            fitter = Fitter(model, space, load_options(None, [*args.overrides, *settings]))
            t = time.perf_counter()
            results = fitter.fit_frames(views.frames)
            seconds = time.perf_counter() - t
            iters = np.mean([r.iterations.sum() for r in results])
            won = np.bincount([r.hypothesis for r in results], minlength=len(names))
            wins = ", ".join(f"{n} {c}" for n, c in zip(names, won))
            rows.append((method, starts, *_errors(fitted_joints(model, results), views.joints), seconds, iters, wins))
            print(f"{method} / {starts}: {rows[-1][2:6]}, {seconds:.0f} s, wins {wins}", flush=True)
    n = len(views.frames)
    print(
        "\n| pose prior | start | MPJPE mm | median MPJPE mm | PA-MPJPE mm | PA-MPJPE 90th pct mm | s / frame "
        "| L-BFGS iterations / frame | wins per start |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for method, starts, e, med, pa, pa90, seconds, iters, wins in rows:
        print(
            f"| {method} | {starts} | {e:.1f} | {med:.1f} | {pa:.1f} | {pa90:.1f} | {seconds / n:.3f} "
            f"| {iters:.0f} | {wins} |"
        )


def _errors(joints: np.ndarray, truth: np.ndarray) -> tuple[float, ...]:
    """MPJPE mean and median, PA-MPJPE mean and 90th percentile (mm) of joints (N, 22, 3)."""
    e, pa = 1000 * mpjpe(joints, truth), 1000 * pa_mpjpe(joints, truth)
    return float(e.mean()), float(np.median(e)), float(pa.mean()), float(np.percentile(pa, 90))


if __name__ == "__main__":
    main()
