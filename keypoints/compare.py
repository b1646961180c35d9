"""Run several detector modes on the same images: side-by-side overlays and
time per image (`python -m keypoints --compare FOLDER --out DIR`,
benchmarks/bench_detect_speed.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from .draw import draw_keypoints
from .files import IMAGE_SUFFIXES, read_image, write_image
from .mediapipe_detector import MediaPipeDetector
from .types import Keypoints

# name: MediaPipeDetector options. "full"/"heavy": whole image, then crops around
# the finder's other people; "crops": top-down, Heavy in a crop per person box.
MODES: dict[str, dict] = {
    "full": dict(landmarks="full"),
    "heavy": dict(landmarks="heavy"),
    "crops": dict(landmarks="heavy", top_down=True),
}


def images_in(folder: Path) -> list[Path]:
    return sorted(f for f in Path(folder).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)


def run_modes(
    paths: Iterable[Path], modes: dict[str, dict] = MODES, holistic: bool = False, repeats: int = 1
) -> dict[str, dict[str, tuple[Keypoints, float]]]:
    """{mode: {image name: (Keypoints, median seconds over `repeats` after one warm-up call)}}."""
    paths = list(paths)
    images = {p.name: read_image(p) for p in paths}
    results: dict[str, dict[str, tuple[Keypoints, float]]] = {}
    for mode, options in modes.items():
        results[mode] = {}
        with MediaPipeDetector(holistic=holistic, **options) as detector:
            detector(next(iter(images.values())))  # warm-up: graph and delegate set-up
            for name, image in images.items():
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    kp = detector(image, source=name)
                    times.append(time.perf_counter() - start)
                results[mode][name] = (kp, float(np.median(times)))
    return results


def side_by_side(image: np.ndarray, panels: dict[str, Keypoints]) -> np.ndarray:
    """One overlay per mode, left to right, each labelled with its mode and people count."""
    tiles = []
    for mode, kp in panels.items():
        tile = draw_keypoints(image, kp)
        label = f"{mode}: {kp.num_people} person(s)" + (f", {len(kp.rejected)} rejected" if kp.rejected else "")
        scale = max(0.5, image.shape[1] / 800)
        cv2.putText(tile, label, (8, int(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(tile, label, (8, int(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


def compare(folder: Path, out: Path, modes: dict[str, dict] = MODES, holistic: bool = False) -> str:
    """Write `<stem>_compare.png` per image of `folder` into `out`; returns a text table."""
    paths = images_in(folder) if Path(folder).is_dir() else [Path(folder)]
    results = run_modes(paths, modes, holistic)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"{'image':<28}" + "".join(f"{m:>22}" for m in modes)]
    for path in paths:
        panels = {m: results[m][path.name][0] for m in modes}
        write_image(out / f"{path.stem}_compare.png", side_by_side(read_image(path), panels))
        cells = [f"{results[m][path.name][0].num_people} p, {1000 * results[m][path.name][1]:.0f} ms" for m in modes]
        lines.append(f"{path.name:<28}" + "".join(f"{c:>22}" for c in cells))
        for m in modes:
            lines += [f"  {m} rejected {r}" for r in results[m][path.name][0].rejected]
    return "\n".join(lines)
