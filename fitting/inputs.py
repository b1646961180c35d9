"""What to fit: images, folders, videos and OpenPose JSON, turned into fitting targets.

`collect` lists the items of an input path (a bad or unknown file is reported,
never raised); `load_item` reads one image or OpenPose frame into the fitter's
targets (`fitting.targets.frame_targets`) or a reason to skip it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from omegaconf import DictConfig

import keypoints
from fitting.targets import FrameTargets, frame_targets
from keypoints.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES

OPENPOSE_SUFFIX = "_keypoints.json"


@dataclass(frozen=True)
class Item:
    """One input: an image, an OpenPose JSON frame (with its image if known), or a video."""

    name: str  # output file stem
    kind: str  # "image" | "openpose" | "video"
    path: Path
    image: Path | None = None


def collect(path: Path, images: Path | None = None) -> tuple[list[Item], dict[str, str]]:
    """Items under `path` (a file, or a folder's files sorted by name, not recursive),
    and the files passed over with the reason. `images`: where OpenPose frames' images are.
    A folder's other .json files and `*_overlay.*` images and videos (e.g. beside the
    `*_keypoints.json` of `python -m keypoints.detect`) are ignored."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    files = sorted(f for f in path.iterdir() if f.is_file() and _is_input(f)) if path.is_dir() else [path]
    items: list[Item] = []
    passed: dict[str, str] = {}
    names: set[str] = set()
    for f in files:
        suffix = f.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            kind, stem = "image", f.stem
        elif suffix in VIDEO_SUFFIXES:
            kind, stem = "video", f.stem
        elif suffix == ".json":
            kind, stem = "openpose", f.name[: -len(OPENPOSE_SUFFIX)] if f.name.endswith(OPENPOSE_SUFFIX) else f.stem
        else:
            passed[f.name] = "not an image, video or OpenPose .json"
            continue
        name = stem if stem not in names else f"{stem}_{suffix[1:]}"
        names.add(name)
        image = _find_image(images, stem) if kind == "openpose" else None
        items.append(Item(name, kind, f, image))
    return items, passed


def _is_input(f: Path) -> bool:
    """Whether a folder's file is to be fitted or reported: not hidden, not an overlay, not a non-OpenPose .json."""
    suffix = f.suffix.lower()
    if f.name.startswith(".") or (suffix == ".json" and not f.name.endswith(OPENPOSE_SUFFIX)):
        return False
    return not (f.stem.endswith("_overlay") and suffix in IMAGE_SUFFIXES | VIDEO_SUFFIXES)


def _find_image(folder: Path | None, stem: str) -> Path | None:
    if folder is None:
        return None
    for f in sorted(folder.glob(f"{stem}.*")):
        if f.suffix.lower() in IMAGE_SUFFIXES:
            return f
    return None


def load_item(
    item: Item, detect: Callable[[np.ndarray, str], keypoints.Keypoints], cfg: DictConfig
) -> tuple[FrameTargets | None, str | None, np.ndarray | None]:
    """(targets, skip reason, BGR image or None) of an image or OpenPose item.
    Raises KeypointsError for a file that cannot be read."""
    image = (
        keypoints.read_image(item.path if item.kind == "image" else item.image)
        if item.kind == "image" or item.image is not None
        else None
    )
    if item.kind == "image":
        kp = detect(image, str(item.path))
    else:
        kp = keypoints.read_openpose(item.path)
    size = (image.shape[1], image.shape[0]) if image is not None else None
    targets, reason = frame_targets(kp, size, cfg)
    return targets, reason, image
