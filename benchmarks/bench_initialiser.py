"""Speed of the learned initialiser: 2D keypoints -> body, per person, on CPU.

    python benchmarks/bench_initialiser.py [--threads 2] [--batches 1,64,256] [--checkpoint PATH]

Times `Initialiser.predict` (input assembly, the network, 6D -> axis-angle) on
BODY_25 keypoints of random people, after a warm-up; prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prior.initialiser.model import load  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", default="1,64,256")
    parser.add_argument("--checkpoint", default=None, help="initialiser weights (default: the shipped ones)")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load(args.checkpoint)
    print(f"| batch | ms / call | ms / person | people / s |  ({args.threads} CPU threads)")
    print("|---|---|---|---|")
    for b in (int(x) for x in args.batches.split(",")):
        xy = torch.rand(b, 25, 2) * torch.tensor([800.0, 1000.0]) + 100
        sets = {"body25": (xy, torch.rand(b, 25) * 0.7 + 0.3)}
        focal, center = torch.full((b, 2), 1100.0), torch.full((b, 2), 500.0)
        for _ in range(5):
            model.predict(sets, focal, center)
        t = time.perf_counter()
        for _ in range(args.repeats):
            model.predict(sets, focal, center)
        ms = 1000 * (time.perf_counter() - t) / args.repeats
        print(f"| {b} | {ms:.2f} | {ms / b:.4f} | {1000 * b / ms:.0f} |")


if __name__ == "__main__":
    main()
