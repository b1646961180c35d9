"""Fitting speed: wall time per image at batch 1, frames per second at larger batches.

    python benchmarks/bench_fit_speed.py [--batches 1,16,64,256] [--device cpu] [--single 4]

Frames are synthetic BODY_25 views of held-out mocap poses (as in
bench_fit_accuracy.py), fitted with the default settings (configs/fit.yaml: the
learned start, the camera stage of up to 30 L-BFGS iterations and the two anchored body
stages of up to 60 each, VPoser prior; overrides change them). Batch 1 fits `--single` frames
one after the other. Times cover the optimisation and the final full-mesh pass,
not detection or file writing. Prints a markdown table.
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
from benchmarks.fit_data import held_out_views, prior_dataset  # noqa: E402
from fitting.config import load_config  # noqa: E402
from fitting.fitter import Fitter  # noqa: E402
from fitting.priors import load_pose_space  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,16,64,256", help="comma-separated batch sizes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--single", type=int, default=4, help="frames timed one by one for batch 1")
    parser.add_argument("--dataset", help="folder with val.npz (default: the prior's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="fit config overrides")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    rng = np.random.default_rng(args.seed)
    cfg = load_config(None, [*args.overrides, f"device={args.device}"])
    model = body.create("anny", device=args.device)
    fitter = Fitter(model, load_pose_space(cfg.prior.kind, cfg.prior.path, args.device), cfg)
    n = max(max(batches), args.single)
    views = held_out_views(model, prior_dataset(args.dataset), n, rng)
    fitter.fit_frames(views.frames[:2])  # warm-up (allocations, first-call overheads)
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}, "
        f"{cfg.optimizer.max_iter} iterations max per stage, schedule {', '.join(cfg.schedule)}",
        flush=True,
    )
    rows = []
    for b in batches:
        groups = [views.frames[i : i + 1] for i in range(args.single)] if b == 1 else [views.frames[:b]]
        calls = fitter.evaluations
        iters = []
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        for frames in groups:
            iters += [r.iterations.sum() for r in fitter.fit_frames(frames)]
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t
        frames_done = sum(len(g) for g in groups)
        rows.append(
            (
                b,
                seconds / frames_done,
                frames_done / seconds,
                np.mean(iters),
                (fitter.evaluations - calls) / len(groups),
            )
        )
        print(f"batch {b}: {seconds / frames_done:.2f} s/frame", flush=True)
    base = rows[0][2] if rows[0][0] == 1 else None
    print(
        "\n| batch | s / frame | frames / s | speed-up vs batch 1 | L-BFGS iterations / frame "
        "| objective calls / batch |"
    )
    print("|---|---|---|---|---|---|")
    for b, spf, fps, it, ev in rows:
        speed = f"{fps / base:.1f}x" if base else "-"
        print(f"| {b} | {spf:.3f} | {fps:.2f} | {speed} | {it:.0f} | {ev:.0f} |")


if __name__ == "__main__":
    main()
