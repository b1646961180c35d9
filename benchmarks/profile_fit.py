"""Where a fit's time goes: cProfile (cumulative and own time) and torch.profiler's op table.

    python benchmarks/profile_fit.py [--batch 1] [--top 25] [--device cpu] [key.sub=value ...]

Fits `--batch` of bench_fit_speed.py's frames (synthetic BODY_25 views of held-out poses,
the default schedule, float32) after a warm-up fit of two frames, once under cProfile and
once under torch.profiler, and prints the objective calls and L-BFGS iterations, the
cProfile tables sorted by cumulative and by own time, and torch's ops by self CPU time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import body  # noqa: E402
from benchmarks.bench_fit_speed import benchmark_frames  # noqa: E402
from benchmarks.fit_data import prior_dataset  # noqa: E402
from fitting.config import load_config  # noqa: E402
from fitting.fitter import Fitter  # noqa: E402
from fitting.priors import load_pose_space  # noqa: E402
from fitting.targets import FrameTargets  # noqa: E402


def timed_fit(fitter: Fitter, frames: list[FrameTargets]) -> str:
    """Fit `frames` once; a line with seconds, objective calls and mean L-BFGS iterations per frame."""
    calls = fitter.evaluations
    start = time.perf_counter()
    results = fitter.fit_frames(frames)
    seconds = time.perf_counter() - start
    iters = np.mean([r.iterations.sum() for r in results])
    return f"{seconds:.2f} s, {fitter.evaluations - calls} objective calls, {iters:.0f} L-BFGS iterations / frame"


def cprofile_tables(fitter: Fitter, frames: list[FrameTargets], top: int) -> str:
    """The fit under cProfile: the `top` functions by cumulative time, then by own time."""
    profile = cProfile.Profile()
    profile.enable()
    line = timed_fit(fitter, frames)
    profile.disable()
    out = io.StringIO()
    for key in ("cumulative", "tottime"):
        out.write(f"\n## cProfile by {key} ({line}, with cProfile's overhead)\n")
        pstats.Stats(profile, stream=out).sort_stats(key).print_stats(top)
    return out.getvalue()


def torch_table(fitter: Fitter, frames: list[FrameTargets], top: int) -> str:
    """The fit under torch.profiler: the `top` ops by self CPU time."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        line = timed_fit(fitter, frames)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=60)
    return f"\n## torch.profiler ops by self CPU time ({line}, with the profiler's overhead)\n{table}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1, help="frames fitted as one batch")
    parser.add_argument("--top", type=int, default=25, help="rows of each table")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dataset", help="folder with val.npz (default: the prior's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="fit config overrides")
    args = parser.parse_args(argv)
    device = body.usable_device(args.device)
    cfg = load_config(None, [*args.overrides, f"device={device}"])
    model = body.create("anny", device=device)
    fitter = Fitter(model, load_pose_space(cfg.prior.kind, cfg.prior.path, device), cfg)
    frames = benchmark_frames(model, prior_dataset(args.dataset), max(args.batch, 2), np.random.default_rng(args.seed))
    fitter.fit_frames(frames[:2])  # warm-up
    batch = frames[: args.batch]
    threads = torch.get_num_threads()
    print(f"batch {args.batch}, {threads} torch threads, frames_per_call {cfg.optimizer.frames_per_call}")
    print(f"plain fit: {timed_fit(fitter, batch)}", flush=True)
    print(cprofile_tables(fitter, batch, args.top), flush=True)
    print(torch_table(fitter, batch, args.top))


if __name__ == "__main__":
    main()
