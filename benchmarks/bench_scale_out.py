"""Frames per second of the local run and of the Ray run with 1 and 2 workers, on the same OpenPose frames.

    .venv/bin/python benchmarks/bench_scale_out.py [--frames 24] [--threads 1] [--out out/bench_scale_out]

The frames are tests/data/keypoints/openpose_basketball1.json (two people) moved a few pixels each,
fitted with the default settings (camera.image_size=[640,480]) and `threads` = `ray.threads_per_worker`
= --threads, each run into a fresh folder. Times are end to end (`run` / `run_on_ray` returning):
the Ray runs include starting Ray and loading the models in every worker, shown apart as "start"
(run.log's first line to its "workers ready" line). Prints a markdown table, the machine's load
(`uptime`) before and after, and the largest difference of a fitted parameter between the local and
the 2-worker outputs (the same fits are expected: same threads, frames batch-independent).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fit_data import jittered_openpose_frames  # noqa: E402
from fitting.config import load_config  # noqa: E402
from fitting.pipeline import run  # noqa: E402
from fitting.scale_out import run_on_ray  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "tests" / "data" / "keypoints" / "openpose_basketball1.json"


def worker_start(out: Path) -> float:
    """Seconds from the run's first log line to its workers being ready (run.log)."""
    lines = [line for line in (out / "run.log").read_text().splitlines() if line[:4].isdigit()]
    ready = next(line for line in lines if "worker(s)" in line)
    first, last = (datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f") for line in (lines[0], ready))
    return (last - first).total_seconds()


def largest_difference(a: Path, b: Path) -> float:
    """The largest absolute difference of the body parameters saved in two runs' .npz files."""
    worst = 0.0
    for f in sorted(a.glob("*.npz")):
        with np.load(f) as x, np.load(b / f.name) as y:
            for k in ("global_orient", "body_pose", "shape", "transl"):
                worst = max(worst, float(np.abs(x[k] - y[k]).max()))
    return worst


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the local run and of each worker")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench_scale_out")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    frames = args.out / "frames"
    jittered_openpose_frames(SOURCE, frames, args.frames, person_px=3.0)
    settings = ["camera.image_size=[640,480]", f"threads={args.threads}", f"ray.threads_per_worker={args.threads}"]
    print(f"load before: {uptime()}  ({os.cpu_count()} CPUs)")
    rows = []
    for label, workers in (("local (run_fit.py)", 0), ("Ray, 1 worker", 1), ("Ray, 2 workers", 2)):
        out = args.out / (f"ray{workers}" if workers else "local")
        cfg = load_config(None, [*settings, f"ray.workers={workers or 1}"])
        start = time.perf_counter()
        summary = run_on_ray(frames, out, cfg, progress=False) if workers else run(frames, out, cfg, progress=False)
        seconds = time.perf_counter() - start
        assert len(summary.fitted) == 2 * args.frames and not summary.failed, summary.report()
        rows.append((label, workers, seconds, worker_start(out) if workers else None))
    print(f"load after: {uptime()}")
    local = rows[0][2]
    print(f"\n{args.frames} frames of 2 people, default settings, {args.threads} thread(s) per process\n")
    print("| run | workers x threads | wall s | frames/s | speed-up vs local | of which Ray start + models s |")
    print("|---|---|---|---|---|---|")
    for label, workers, seconds, start in rows:
        shape = f"{workers} x {args.threads}" if workers else f"1 process x {args.threads}"
        print(
            f"| {label} | {shape} | {seconds:.1f} | {args.frames / seconds:.2f} | {local / seconds:.2f}x | "
            f"{'' if start is None else f'{start:.1f}'} |"
        )
    difference = largest_difference(args.out / "local", args.out / "ray2")
    print(f"\nlargest parameter difference, local vs 2 workers: {difference:.2g}")


if __name__ == "__main__":
    main()
