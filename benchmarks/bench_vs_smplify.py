"""Frames per second and accuracy against an SMPLify-X-style batch-1 fit, on the same frames.

    OMP_NUM_THREADS=1 python benchmarks/bench_vs_smplify.py [--frames 8] [--smplify-budget 900]

SMPLify-X fits one image at a time: it starts from the mean pose turned as the 2D
torso says (and retries the body turned around when the shoulders look edge-on),
runs five stages of decreasing prior weights with torch's L-BFGS, each stage an
outer loop of up to `maxiters` optimizer steps of up to `maxiters` L-BFGS
iterations, until the loss changes by less than `ftol` (its configs: 30 and 1e-9).
The reconstruction here runs the same starts (`torso`, `side_view_twin`) and
stages (`camera,body1..body5`, SMPLify-X's weights) with this project's batched
L-BFGS on one frame per call: "SMPLify-X-style, our caps" with our limit of 30
iterations a stage, and "SMPLify-X-style, its budget" with `--smplify-budget`
iterations a stage and a relative tolerance of 1e-9. Against them: the default
fit (learned start, anchored stages) one frame at a time and all frames in one
batch. Frames are held-out mocap poses on Anny seen as BODY_25 keypoints with
noise (benchmarks/bench_fit_accuracy.py's frames). Prints a markdown table.
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
from fitting.config import load_config  # noqa: E402
from fitting.fitter import FitResult, Fitter  # noqa: E402
from fitting.metrics import mpjpe, pa_mpjpe  # noqa: E402
from fitting.options import FitOptions  # noqa: E402
from fitting.priors import load_pose_space  # noqa: E402
from fitting.targets import FrameTargets  # noqa: E402

SMPLIFY = ["init.hypotheses=[torso,side_view_twin]", f"schedule=[{','.join(FIVE_STAGES)}]"]


def fit(fitter: Fitter, frames: list[FrameTargets], batch: int) -> tuple[list[FitResult], float]:
    """Fits of `frames` in batches of `batch`, and the seconds they took."""
    start = time.perf_counter()
    results = [r for i in range(0, len(frames), batch) for r in fitter.fit_frames(frames[i : i + batch])]
    return results, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--smplify-budget", type=int, default=900, help="L-BFGS iterations a stage for 'its budget'")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", help="folder with val.npz (default: the prior's)")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model = body.create("anny")
    views = held_out_views(model, prior_dataset(args.dataset), args.frames, np.random.default_rng(args.seed))
    budget = [f"optimizer.max_iter={args.smplify_budget}", "optimizer.rel_tolerance=1e-9"]
    methods = [
        ("SMPLify-X-style (torso start, five stages), our caps, batch 1", [*SMPLIFY, "optimizer.frames_per_call=0"], 1),
        ("SMPLify-X-style, its budget, batch 1", [*SMPLIFY, *budget, "optimizer.frames_per_call=0"], 1),
        ("default (learned start, anchored stages), batch 1", [], 1),
        (f"default, batch {args.frames}", [], args.frames),
    ]
    rows = []
    for name, overrides, batch in methods:
        cfg = load_config(None, overrides)
        fitter = Fitter(model, load_pose_space(cfg.prior.kind, cfg.prior.path), FitOptions.of(cfg))
        fitter.fit_frames(views.frames[:1])  # warm-up
        results, seconds = fit(fitter, views.frames, batch)
        joints = fitted_joints(model, results)
        pa, e = 1000 * pa_mpjpe(joints, views.joints), 1000 * mpjpe(joints, views.joints)
        iters = np.mean([r.iterations.sum() for r in results])
        rows.append((name, seconds / len(results), float(pa.mean()), float(e.mean()), iters))
        print(f"{name}: {rows[-1][1]:.3f} s/frame, PA-MPJPE {rows[-1][2]:.1f} mm", flush=True)
    base = rows[0][1]
    print(f"\n{args.frames} frames, {torch.get_num_threads()} torch threads, float32\n")
    print("| fit | s / frame | frames / s | speed vs the first row | PA-MPJPE mm | MPJPE mm | iterations / frame |")
    print("|---|---|---|---|---|---|---|")
    for name, s, pa, e, iters in rows:
        print(f"| {name} | {s:.3f} | {1 / s:.2f} | {base / s:.1f}x | {pa:.1f} | {e:.1f} | {iters:.0f} |")


if __name__ == "__main__":
    main()
