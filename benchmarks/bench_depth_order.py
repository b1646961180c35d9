"""Depth-order sanity of multi-person fits: on a floor seen from about eye level, a person whose
feet are lower in the image stands nearer the camera.

    python benchmarks/bench_depth_order.py OUT [--margin 0.03] [--min-confidence 0.5]

OUT is a run_fit.py output folder. For every frame with several fitted people
(`KEY.person_<id>.npz`), every pair whose feet (ankles, heels, toes: the lowest
detected with confidence >= --min-confidence) are both seen and differ in height
by more than --margin of the image height is checked: a violation is the pair
where the lower feet belong to the person placed farther away (pelvis depth).
"""

from __future__ import annotations

import argparse
import itertools
import re
from pathlib import Path

import numpy as np

from body.keypoint_sets import keypoint_names

FEET = ("ankle", "heel", "toe", "foot")


def feet_y(npz: np.lib.npyio.NpzFile, min_confidence: float) -> float | None:
    """The image y of the person's lowest confidently detected foot point, None when none is seen."""
    ys = []
    for key in npz.files:
        if not key.startswith("keypoints_"):
            continue
        names = keypoint_names(key[len("keypoints_") :])
        pts = npz[key]
        ys += [float(p[1]) for n, p in zip(names, pts) if any(f in n for f in FEET) and p[2] >= min_confidence]
    return max(ys) if ys else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--margin", type=float, default=0.03)
    parser.add_argument("--min-confidence", type=float, default=0.5)
    args = parser.parse_args()
    frames: dict[str, list[Path]] = {}
    for f in sorted(args.out.rglob("*.person_*.npz")):
        frames.setdefault(re.sub(r"\.person_\d+$", "", str(f.relative_to(args.out))[: -len(".npz")]), []).append(f)
    pairs = violations = unseen = 0
    for key, files in frames.items():
        people = []
        for f in files:
            with np.load(f) as npz:
                y = feet_y(npz, args.min_confidence)
                people.append((int(npz["person_id"]), y, float(npz["transl"][2]), int(npz["image_size"][1])))
        unseen += sum(y is None for _, y, _, _ in people)
        seen = [p for p in people if p[1] is not None]
        for (ia, ya, za, h), (ib, yb, zb, _) in itertools.combinations(seen, 2):
            if abs(ya - yb) <= args.margin * h:
                continue
            pairs += 1
            lower_farther = (ya > yb) == (za > zb)
            violations += lower_farther
            print(
                f"{key}: person {ia} feet y {ya:.0f} depth {za:.2f} m, person {ib} feet y {yb:.0f} depth {zb:.2f} m"
                + ("  <- lower feet placed farther" if lower_farther else "")
            )
    people = sum(len(f) for f in frames.values())
    print(
        f"{len(frames)} frames, {people} people ({unseen} without seen feet), {pairs} pairs checked, "
        f"{violations} with the lower feet placed farther"
    )


if __name__ == "__main__":
    main()
