"""Training curves of a temporal lifter run: its validation PA-MPJPE, MPJPE and acceleration error
against the initialiser's on the same frames, and the training loss terms, from metrics.json.

    python benchmarks/plot_temporal_lifter.py out/temporal_lifter/default/metrics.json docs/temporal_lifter.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = (("pa_mpjpe_mm", "PA-MPJPE (mm)"), ("mpjpe_mm", "MPJPE (mm)"), ("accel_mm_per_frame2", "accel (mm/frame²)"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("png", type=Path)
    args = parser.parse_args(argv)
    history = json.loads(args.metrics.read_text())["history"]
    steps = [row["step"] for row in history]
    fig, axes = plt.subplots(1, len(PANELS) + 1, figsize=(14, 3.2))
    for ax, (key, label) in zip(axes, PANELS):
        for model, style in (("lifter", "-"), ("initialiser", "--")):
            ax.plot(steps, [row["val"][model][key] for row in history], style, label=model)
        ax.set_title(f"held-out {label}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.legend(fontsize=7)
    for term in ("joints", "velocity", "depth"):
        axes[-1].plot(steps, [row[term] for row in history], label=term)
    axes[-1].set_yscale("log")
    axes[-1].set_title("training loss terms (batch at the step)", fontsize=9)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.png, dpi=80)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
