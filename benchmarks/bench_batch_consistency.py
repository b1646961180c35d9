"""Does a frame's fit depend on its batch? One photo fitted alone, as copies, and at positions among other frames.

    python benchmarks/bench_batch_consistency.py [--image examples/basketball1.png] [--copies 20]
                                                 [--batches 7,32] [--dtype float32] [key.sub=value ...]

The photo's MediaPipe detections are fitted alone, `--copies` times in one
batch, and at the first, middle and last position of batches of `--batches`
filled with synthetic BODY_25 views. Prints, per fit, the winning hypothesis,
the mean reprojection error, the largest 3D body-joint distance to the fit
alone (mm) and the loss after each stage, then where the loss of the photo's
first start first differs from the fit alone (stage, iteration, relative
difference). `--dtype float64` fits with the body model and prior in double
precision (does the spread come from float32 rounding?).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import body  # noqa: E402
import keypoints  # noqa: E402
import prior  # noqa: E402
from benchmarks.fit_data import fitted_joints  # noqa: E402
from fitting.camera import intrinsics  # noqa: E402
from fitting.config import load_options  # noqa: E402
from fitting.fitter import FitResult, Fitter  # noqa: E402
from fitting.outputs import frame_reprojection  # noqa: E402
from fitting.synthetic import render_views  # noqa: E402
from fitting.targets import FrameTargets  # noqa: E402
from prior.pose_spaces import VPoserSpace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def traced_fit(fitter: Fitter, frames: list[FrameTargets], row: int) -> tuple[FitResult, list[tuple[str, int, float]]]:
    """Fit `frames`; the result of frame `row` and the loss of its first start after every iteration."""
    trace: list[tuple[str, int, float]] = []

    def hook(stage: str, iteration: int, rows: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        hit = (rows == row).nonzero().flatten()
        if len(hit):
            trace.append((stage, iteration, float(sum(t[hit[0]].sum() for t in terms.values()))))

    fitter.on_iteration(hook)
    try:
        return fitter.fit_frames(frames)[row], trace
    finally:
        fitter.on_iteration(None)


def first_difference(a: list[tuple[str, int, float]], b: list[tuple[str, int, float]]) -> str:
    """Where two loss traces first differ."""
    for (stage, it, fa), (stage_b, it_b, fb) in zip(a, b):
        if (stage, it) != (stage_b, it_b):
            return f"{stage} iteration {it}: one row stopped ({stage_b} iteration {it_b} in the other)"
        if fa != fb:
            return f"{stage} iteration {it}: relative difference {abs(fa - fb) / max(abs(fa), 1e-30):.1e}"
    return "never" if len(a) == len(b) else "at a stage's end (one row stopped earlier)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default=str(ROOT / "examples" / "basketball1.png"))
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--batches", default="7,32", help="batch sizes the photo is mixed into")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("overrides", nargs="*", help="fit config overrides")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    model = body.create("anny", dtype=dtype)
    fitter = Fitter(model, VPoserSpace(prior.load().to(dtype)), load_options(None, args.overrides))
    kp = keypoints.detect(args.image).choose("largest")
    focal, center = intrinsics(kp.image_size)
    photo = FrameTargets(keypoints.targets(kp), focal, center, kp.image_size)
    sizes = [int(b) for b in args.batches.split(",")]
    pose = np.zeros((max(sizes), 21, 3), np.float32)
    fillers = render_views(model, pose, None, np.random.default_rng(0)).frames

    layouts: list[tuple[str, list[FrameTargets], int]] = [("alone", [photo], 0)]
    layouts += [(f"copy {i} of {args.copies}", [photo] * args.copies, i) for i in (0, args.copies - 1)]
    for b in sizes:
        for at in sorted({0, b // 2, b - 1}):
            layouts.append((f"at {at} of {b}", fillers[:at] + [photo] + fillers[at + 1 : b], at))
    fits, traces = [], []
    for _, frames, row in layouts:
        fit, trace = traced_fit(fitter, frames, row)
        fits.append(fit)
        traces.append(trace)
    copies = fitter.fit_frames([photo] * args.copies)
    all_joints = fitted_joints(model, fits + copies)
    dev = np.linalg.norm(all_joints - all_joints[0], axis=-1).max(-1) * 1000
    print(f"{args.image}, {args.dtype}")
    print("| fit | hypothesis | reprojection px | joints vs alone mm | stage losses | first differs |")
    print("|---|---|---|---|---|---|")
    for (name, _, _), fit, trace, d in zip(layouts, fits, traces, dev):
        px = frame_reprojection(fit, photo)[0]
        losses = " ".join(f"{x:.6g}" for x in fit.stage_losses)
        print(f"| {name} | {fit.hypothesis} | {px:.2f} | {d:.1f} | {losses} | {first_difference(traces[0], trace)} |")
    spread = dev[len(layouts) :]
    print(
        f"\n{args.copies} copies in one batch: joints vs alone {spread.min():.1f}..{spread.max():.1f} mm, "
        f"hypotheses {sorted({r.hypothesis for r in copies})}; every fit above: max {dev.max():.1f} mm"
    )


if __name__ == "__main__":
    main()
