"""Fitting speed: frames per second and seconds per frame by batch size, on the CPU or a CUDA GPU.

    python benchmarks/bench_fit_speed.py                  # a GPU if torch sees one, else the CPU
    python benchmarks/bench_fit_speed.py --device cuda    # batches 64,256,1024,4096; fp32 and tf32
    python benchmarks/bench_fit_speed.py --device cpu [--batches 1,16,64,256] [--single 4]

Frames are synthetic BODY_25 views of distinct held-out mocap poses (as in
bench_fit_accuracy.py; 7,574 poses, so up to that many frames are all different),
fitted with the default settings (configs/fit.yaml: the learned start, the camera stage
of up to 30 L-BFGS iterations and the two anchored body stages of up to 60 each, VPoser
prior; overrides change them), in float32. Batch 1 fits `--single` frames one after the
other. Times cover the optimisation and the final full-mesh pass, not detection or file
writing; each precision starts with a warm-up fit of two frames. On a GPU the clock
stops after `torch.cuda.synchronize()`, every batch's peak GPU memory is reported, and
the body model sees whole batches (`--frames-per-call 0`, where the CPU default of 16
frames per call keeps a frame's rounding independent of its batch, fitting/rowwise.py).
`--precision tf32` lets CUDA matrix products round their inputs to TF32
(`torch.backends.cuda.matmul.allow_tf32`). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import body  # noqa: E402
from benchmarks.fit_data import held_out_poses, prior_dataset  # noqa: E402
from fitting.config import load_config  # noqa: E402
from fitting.fitter import Fitter  # noqa: E402
from fitting.options import FitOptions  # noqa: E402
from fitting.priors import load_pose_space  # noqa: E402
from fitting.synthetic import render_views  # noqa: E402
from fitting.targets import FrameTargets  # noqa: E402

BATCHES = {"cpu": "1,16,64,256", "cuda": "64,256,1024,4096"}
PRECISIONS = {"cpu": "fp32", "cuda": "fp32,tf32"}
RENDER_CHUNK = 256  # frames posed per call when making the views (the full mesh of 4096 bodies is GiBs)


def set_precision(name: str) -> None:
    """fp32: CUDA float32 matrix products in full float32; tf32: rounded to TF32 (Ampere and later)."""
    torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
    torch.backends.cudnn.allow_tf32 = name == "tf32"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"


def benchmark_frames(model: body.BodyModel, folder: Path, n: int, rng: np.random.Generator) -> list[FrameTargets]:
    """n synthetic views of n held-out poses (distinct while the validation actors have that many)."""
    pose, orient = held_out_poses(folder, n, rng)
    return [
        f
        for i in range(0, n, RENDER_CHUNK)
        for f in render_views(model, pose[i : i + RENDER_CHUNK], orient[i : i + RENDER_CHUNK], rng).frames
    ]


def time_batch(fitter: Fitter, frames: list[FrameTargets], batch: int, single: int) -> dict[str, float]:
    """Fit `batch` frames as one batch (batch 1: `single` frames one by one); seconds, frames,
    mean L-BFGS iterations per frame, objective calls per batch, peak GPU memory (GiB; NaN on the CPU)."""
    groups = [frames[i : i + 1] for i in range(single)] if batch == 1 else [frames[:batch]]
    cuda = fitter.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(fitter.device)
        torch.cuda.reset_peak_memory_stats(fitter.device)
    calls, iters = fitter.evaluations, []
    start = time.perf_counter()
    for group in groups:
        iters += [r.iterations.sum() for r in fitter.fit_frames(group)]
    if cuda:
        torch.cuda.synchronize(fitter.device)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "frames": sum(len(g) for g in groups),
        "iterations": float(np.mean(iters)),
        "calls": (fitter.evaluations - calls) / len(groups),
        "memory": torch.cuda.max_memory_allocated(fitter.device) / 2**30 if cuda else float("nan"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu, cuda, cuda:N")
    parser.add_argument("--batches", help=f"comma-separated batch sizes (default {BATCHES})")
    parser.add_argument("--precision", help=f"fp32 and/or tf32, comma-separated (default {PRECISIONS})")
    parser.add_argument("--frames-per-call", type=int, help="optimizer.frames_per_call (default: 0 on CUDA)")
    parser.add_argument("--single", type=int, default=4, help="frames timed one by one for batch 1")
    parser.add_argument("--dataset", help="folder with val.npz (default: the prior's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="fit config overrides")
    args = parser.parse_args(argv)
    try:
        device = body.usable_device(args.device)
    except ValueError as e:
        parser.error(str(e))
    kind = "cuda" if device.type == "cuda" else "cpu"
    batches = [int(b) for b in (args.batches or BATCHES[kind]).split(",")]
    precisions = (args.precision or PRECISIONS[kind]).split(",")
    if unknown := set(precisions) - {"fp32", "tf32"}:
        parser.error(f"--precision {sorted(unknown)}: use fp32 and/or tf32")
    if "tf32" in precisions and kind != "cuda":
        parser.error("--precision tf32 is a CUDA mode (TF32 matrix products); the CPU runs fp32")
    per_call = 0 if args.frames_per_call is None and kind == "cuda" else args.frames_per_call
    overrides = [*args.overrides, f"device={device}"]
    if per_call is not None:
        overrides.append(f"optimizer.frames_per_call={per_call}")
    cfg = load_config(None, overrides)
    model = body.create("anny", device=device)
    fitter = Fitter(model, load_pose_space(cfg.prior.kind, cfg.prior.path, device), FitOptions.of(cfg))
    rng = np.random.default_rng(args.seed)
    frames = benchmark_frames(model, prior_dataset(args.dataset), max(*batches, args.single, 2), rng)
    print(
        f"{device_name(device)}, torch {torch.__version__}; {len(frames)} frames, float32, "
        f"{cfg.optimizer.max_iter} iterations max per stage, schedule {', '.join(cfg.schedule)}, "
        f"frames_per_call {cfg.optimizer.frames_per_call}",
        flush=True,
    )
    rows = []
    for precision in precisions:
        set_precision(precision)
        fitter.fit_frames(frames[:2])  # warm-up: kernels, allocations, first-call overheads
        for b in batches:
            rows.append((precision, b, time_batch(fitter, frames, b, args.single)))
            r = rows[-1][2]
            print(f"{precision} batch {b}: {r['frames'] / r['seconds']:.2f} frames/s", flush=True)
    print(
        f"\n| precision | batch | s / frame | frames / s | speed-up vs batch {batches[0]} "
        "| L-BFGS iterations / frame | objective calls / batch | peak GPU memory (GiB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for precision, b, r in rows:
        fps = r["frames"] / r["seconds"]
        base = next(x for p, _, x in rows if p == precision)
        memory = "-" if np.isnan(r["memory"]) else f"{r['memory']:.2f}"
        print(
            f"| {precision} | {b} | {r['seconds'] / r['frames']:.4f} | {fps:.2f} | "
            f"{fps / (base['frames'] / base['seconds']):.1f}x | {r['iterations']:.0f} | {r['calls']:.0f} | {memory} |"
        )
    if fitter.driver.probe_seconds:
        probed = ", ".join(f"{agreed} (of {most} probed)" for agreed, most in fitter.calls.verdicts.values())
        print(
            f"\ncall-size probes (per stage kind, inside the first batch of more than 16 frames and a larger one): "
            f"{fitter.driver.probe_seconds:.2f} s; rows per call allowed: {probed}"
        )


if __name__ == "__main__":
    main()
