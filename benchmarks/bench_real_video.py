"""Reprojection error and jitter of fitted videos, per tracked person, from run_fit.py's outputs.

    python benchmarks/bench_real_video.py OUT_DIR [OUT_DIR ...] [--names before,after]

For each output folder (a video or a --sequence fitted by run_fit.py), reads every person's
per-frame npz (`KEY.npz` / `KEY.person_<id>.npz`; the frame number is the key's last digits,
the person the saved `person_id`) and prints, per person and over all: frames fitted, the mean
reprojection error of the body keypoints (px), and the jitter: the mean size of the second
difference over three consecutive frames (px/frame^2) of the fitted model's projected body
keypoints, beside that of the detected keypoints themselves (the same points, where all three
frames detected them). A smooth fit has lower jitter than its detections; a fit that follows
every wobble of the detector has the same.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

KEY_FRAME = re.compile(r"(\d+)(?:\.person_\d+)?$")


def tracks(out_dir: Path) -> dict[int, dict[int, dict[str, np.ndarray]]]:
    """person_id -> frame number -> that frame's body keypoints (detected, weights, projected) and error."""
    found: dict[int, dict[int, dict[str, np.ndarray]]] = {}
    for path in sorted(out_dir.rglob("*.npz")):
        match = KEY_FRAME.search(path.name[: -len(".npz")])
        if match is None or path.name.startswith("motion"):
            continue
        with np.load(path, allow_pickle=False) as data:
            sets = [k[len("projected_") :] for k in data.files if k.startswith("projected_")]
            if not sets or "person_id" not in data.files:
                continue
            name = sets[0]
            found.setdefault(int(data["person_id"]), {})[int(match.group(1))] = {
                "detected": data[f"keypoints_{name}"][:, :2],
                "weights": data[f"weights_{name}"],
                "projected": data[f"projected_{name}"][:, :2],
                "error": data["reprojection_px"],
            }
    return found


def jitter(frames: dict[int, dict[str, np.ndarray]]) -> tuple[float, float, int]:
    """Mean second-difference size (px/frame^2) of the projected and of the detected points, over
    every three consecutive fitted frames and the points detected in all three; and the triples."""
    fitted, detected = [], []
    for f in sorted(frames):
        if f - 1 in frames and f + 1 in frames:
            a, b, c = frames[f - 1], frames[f], frames[f + 1]
            seen = (a["weights"] > 0) & (b["weights"] > 0) & (c["weights"] > 0)
            if seen.any():
                for key, into in (("projected", fitted), ("detected", detected)):
                    second = a[key] - 2 * b[key] + c[key]
                    into.append(np.linalg.norm(second[seen], axis=-1).mean())
    if not fitted:
        return float("nan"), float("nan"), 0
    return float(np.mean(fitted)), float(np.mean(detected)), len(fitted)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outputs", nargs="+", type=Path, help="run_fit.py output folders")
    parser.add_argument("--names", help="comma-separated row names (default: the folder names)")
    parser.add_argument("--min-frames", type=int, default=10, help="people with fewer fitted frames are left out")
    args = parser.parse_args(argv)
    names = args.names.split(",") if args.names else [p.name for p in args.outputs]
    if len(names) != len(args.outputs):
        parser.error(f"--names gives {len(names)} names for {len(args.outputs)} folders")
    print("| run | person | frames | reprojection px | jitter, fit px/frame^2 | jitter, detections px/frame^2 |")
    print("|---|---|---|---|---|---|")
    for name, out in zip(names, args.outputs):
        people = {p: f for p, f in tracks(out).items() if len(f) >= args.min_frames}
        if not people:
            raise SystemExit(f"{out}: no person with {args.min_frames} or more fitted frames (is it a fitted video?)")
        errors, fits, dets = [], [], []
        for person, frames in sorted(people.items()):
            fit, det, n = jitter(frames)
            error = float(np.mean([f["error"] for f in frames.values()]))
            errors.extend(f["error"] for f in frames.values())
            fits.extend([fit] * n)
            dets.extend([det] * n)
            print(f"| {name} | {person} | {len(frames)} | {error:.1f} | {fit:.2f} | {det:.2f} |")
        print(f"| {name} | all | {len(errors)} | {np.mean(errors):.1f} | {np.mean(fits):.2f} | {np.mean(dets):.2f} |")


if __name__ == "__main__":
    main()
