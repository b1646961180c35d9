"""The temporal lifter against the single-frame initialiser on held-out actors' videos, and its speed.

    python benchmarks/bench_temporal_lifter.py [--threads 2] [--windows 64] [--checkpoint PATH]
        [--sequences out/temporal/sequences] [--mocap ../shared/data/mocap]

Accuracy: windows of 161 frames (81 scored) at 30 fps of the validation actors' mocap sequences
(`prior.data.sequences` val.npz, built from --mocap when missing), filmed and corrupted as in
training (`prior.initialiser.temporal_data.draw_windows`, configs/train_temporal_lifter.yaml `views`), under
two noise presets: "training" (the training corruption) and "mild" (white noise of 1 % of the
body's size, 20 % of the points dropped, nothing else). The same frames are scored for the lifter
and for the initialiser's regressed answer frame by frame. Speed: `lift` on a 300-frame BODY_25
track (padding, the initialiser on every frame, the convolutions, 6D -> axis-angle).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prior.data.fk import RestSkeleton, rest_joints  # noqa: E402
from prior.data.sequences import Sequences  # noqa: E402
from prior.initialiser.temporal_data import SequenceBodies, draw_windows  # noqa: E402
from prior.initialiser.temporal_lifter import lift, load  # noqa: E402
from prior.initialiser.temporal_train import evaluate, load_config, sequences_folder  # noqa: E402

PRESETS = {
    "training": [],
    "mild": [
        "views.noise=0.01", "views.jitter=0.0", "views.drop=0.2", "views.bursts=0.0", "views.gap=0.0",
        "views.outlier=0.0", "views.swap_all=0.0", "views.swap_one=0.0",
    ],
}  # fmt: skip


def speed(model, frames: int = 300, repeats: int = 5) -> float:
    """Milliseconds per frame of `lift` on a random BODY_25 track of `frames` frames."""
    gen = torch.Generator().manual_seed(0)
    points = 200 + 600 * torch.rand(frames, 25, 2, generator=gen)
    conf = 0.3 + 0.7 * torch.rand(frames, 25, generator=gen)
    lift(model, points, conf, "body25", 1000.0, (640.0, 360.0))
    start = time.perf_counter()
    for _ in range(repeats):
        lift(model, points, conf, "body25", 1000.0, (640.0, 360.0))
    return 1000 * (time.perf_counter() - start) / repeats / frames


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--windows", type=int, default=64)
    parser.add_argument("--checkpoint", default=None, help="lifter weights (default: the shipped ones)")
    parser.add_argument("--sequences", default="out/temporal/sequences")
    parser.add_argument("--mocap", default="../shared/data/mocap")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load(args.checkpoint)
    import body

    anny = body.create("anny")
    cfg = load_config(overrides=[f"data.sequences={args.sequences}", f"data.mocap={args.mocap}"])
    val = Sequences.read(sequences_folder(cfg) / "val.npz")
    bodies = SequenceBodies.build(anny, val, np.random.default_rng(0))
    skeleton = RestSkeleton(rest_joints(anny), pelvis_at_origin=True)
    actors = ", ".join(sorted(set(val.actors[val.actor])))
    print(f"held-out actors: {actors}; {args.windows} windows of 161 frames at 30 fps, 81 scored each\n")
    print("| noise | model | PA-MPJPE mm | PA-MPJPE p90 mm | MPJPE mm | accel mm/frame^2 | orientation deg |")
    print("|---|---|---|---|---|---|---|")
    for preset, overrides in PRESETS.items():
        views = load_config(overrides=[*overrides, "views.fps=[30.0,30.0]", "views.ends=0.0"]).views
        windows = draw_windows(bodies, args.windows, 161, torch.Generator().manual_seed(1), views)
        got = evaluate(model, windows, skeleton)
        for name in ("initialiser", "lifter"):
            r = got[name]
            print(
                f"| {preset} | {name} | {r['pa_mpjpe_mm']:.1f} | {r['pa_mpjpe_p90_mm']:.1f} | {r['mpjpe_mm']:.1f} | "
                f"{r['accel_mm_per_frame2']:.1f} | {r['orientation_deg']:.1f} |"
            )
        lifter = got["lifter"]
        print(
            f"| {preset} | lifter depth error | {lifter['depth_pct']:.1f} % absolute (typical-adult scale), "
            f"{lifter['depth_vs_first_frame_pct']:.1f} % relative to the first frame | | | | |"
        )
    print(f"\nlift: {speed(model):.3f} ms per frame ({args.threads} CPU threads, 300-frame BODY_25 track)")


if __name__ == "__main__":
    main()
