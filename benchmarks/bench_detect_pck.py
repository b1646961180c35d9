"""PCK at 0.1 x height on the hand-labelled photos (tests/data/people, issue 12) for
BlazePose Full, Heavy and the top-down crop pipeline; prints a markdown table
(benchmarks/detector_pck.md is written from it).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_detect_pck.py [--overlays DIR]

Per mode (keypoints.compare.MODES, body only) and image: labelled keypoints
within 0.1 x the person's height on the skeleton matched to that person, labelled
people found (matched to a skeleton of their own), skeletons spanning two
labelled people, and detection time (one call after a warm-up, 2 cores); per mode
also the skeletons drawn in all (found or not, labelled or not) and how many of them
are MoveNet's own points (people BlazePose did not find).
--overlays writes `<stem>_pck.png` per image: the modes side by side, labelled
points as white crosses.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keypoints.compare import MODES, run_modes, side_by_side  # noqa: E402
from keypoints.files import read_image, write_image  # noqa: E402
from keypoints.pck import Person, Score, load_labels, score  # noqa: E402


def _with_labels(image_path: Path, people: list[Person]) -> np.ndarray:
    image = read_image(image_path)
    for p in people:
        for x, y in p.keypoints.values():
            cv2.drawMarker(image, (int(x), int(y)), (255, 255, 255), cv2.MARKER_TILTED_CROSS, 10, 2)
    return image


def _cell(s: Score, ms: float) -> str:
    return f"{100 * s.pck:.0f} % · {sum(s.found)}/{len(s.found)} · {len(s.spanning)} · {ms:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--overlays", type=Path, help="folder for side-by-side overlays with the labels")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 2:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    labelled = load_labels()
    missing = [im.name for im in labelled if im.path is None]
    labelled = [im for im in labelled if im.path is not None]
    results = run_modes([im.path for im in labelled], MODES)
    scores = {m: {im.name: score(results[m][im.path.name][0].body, im.people) for im in labelled} for m in MODES}
    print(f"{len(labelled)} labelled photos, {sum(len(im.people) for im in labelled)} people")
    if missing:
        print(f"not installed (run scripts/setup.sh): {', '.join(missing)}")
    print("\nPer image: PCK@0.1 · people found / labelled · skeletons spanning two people · ms\n")
    print("| image | people | " + " | ".join(MODES) + " |")
    print("|---|---|" + "---|" * len(MODES))
    for im in labelled:
        cells = [_cell(scores[m][im.name], 1000 * results[m][im.path.name][1]) for m in MODES]
        print(f"| {im.name} | {len(im.people)} | " + " | ".join(cells) + " |")
    print("\n| mode | PCK@0.1 | people found | spanning skeletons | skeletons (MoveNet) | median ms |")
    print("|---|---|---|---|---|---|")
    for m in MODES:
        s = scores[m].values()
        correct, total = sum(x.correct for x in s), sum(x.total for x in s)
        found = sum(sum(x.found) for x in s)
        people = sum(len(x.found) for x in s)
        ms = sorted(1000 * t for _, t in results[m].values())
        kps = [kp for kp, _ in results[m].values()]
        movenet = sum((kp.origins or []).count("movenet") for kp in kps)
        print(
            f"| {m} | {100 * correct / total:.1f} % ({correct}/{total}) | {found}/{people} | "
            f"{sum(len(x.spanning) for x in s)} | {sum(kp.num_people for kp in kps)} ({movenet}) | "
            f"{ms[len(ms) // 2]:.0f} |"
        )
    if args.overlays:
        args.overlays.mkdir(parents=True, exist_ok=True)
        for im in labelled:
            panels = {m: results[m][im.path.name][0] for m in MODES}
            write_image(
                args.overlays / f"{im.path.stem}_pck.png", side_by_side(_with_labels(im.path, im.people), panels)
            )


if __name__ == "__main__":
    main()
