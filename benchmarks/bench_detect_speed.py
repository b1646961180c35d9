"""Detection speed per image for each detector mode, on 2 cores (issue 12).

    .venv/bin/python benchmarks/bench_detect_speed.py [FOLDER] [--repeats 3] [--holistic]

Modes (body only unless --holistic): BlazePose Full and Heavy on the whole
image plus crops around people the person finder adds, "crops" (Heavy, top-down:
one crop per person box), the same with HOG boxes instead of MoveNet's, and the
whole image alone; then the person finders alone. Each figure is the median over
images of the median over repeats, after one warm-up call.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keypoints.compare import images_in, run_modes  # noqa: E402
from keypoints.files import read_image  # noqa: E402
from keypoints.person_finder import make_finder  # noqa: E402

MODES = {
    "full, whole image only": dict(landmarks="full", find_people=False),
    "heavy, whole image only": dict(landmarks="heavy", find_people=False),
    "full + people search": dict(landmarks="full"),
    "heavy + people search": dict(landmarks="heavy"),
    "crops (heavy, top-down)": dict(landmarks="heavy", top_down=True),
    "crops (heavy, HOG boxes)": dict(landmarks="heavy", top_down=True, finder="hog"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", type=Path, default=Path(__file__).parents[2] / "shared/data/images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--holistic", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 2:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    paths = images_in(args.folder)
    results = run_modes(paths, MODES, holistic=args.holistic, repeats=args.repeats)
    print(
        f"{len(paths)} image(s) from {args.folder}, {len(os.sched_getaffinity(0))} cores, "
        f"{'holistic' if args.holistic else 'body only'}"
    )
    print(f"| {'mode':<26} | ms/image (median) | ms/image (max) | people found |")
    print(f"|{'-' * 28}|{'-' * 19}|{'-' * 16}|{'-' * 14}|")
    for mode, per_image in results.items():
        ms = np.array([t for _, t in per_image.values()]) * 1000
        people = sum(kp.num_people for kp, _ in per_image.values())
        print(f"| {mode:<26} | {np.median(ms):17.0f} | {ms.max():14.0f} | {people:12d} |")
    images = [read_image(p) for p in paths]
    for kind in ("movenet", "hog"):
        try:
            finder = make_finder(kind)
        except RuntimeError as e:
            print(f"| finder {kind:<19} | not installed: {e}")
            continue
        finder(images[0])
        times = []
        for image in images:
            start = time.perf_counter()
            finder(image)
            times.append(1000 * (time.perf_counter() - start))
        found = sum(len(finder(im)[0]) for im in images)
        print(f"| finder {kind:<19} | {np.median(times):17.0f} | {max(times):14.0f} | {found:7d} boxes |")


if __name__ == "__main__":
    main()
