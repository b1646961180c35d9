"""What to fit: images, folders, videos and OpenPose JSON, turned into fitting targets.

`collect` lists the items of an input path (a bad or unknown file is reported,
never raised); `load_item` reads one image or OpenPose frame into the fitter's
targets of each chosen person (`fitting.targets.people_targets`) or a reason to skip it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from omegaconf import DictConfig

import keypoints
from fitting.targets import PersonTargets, people_targets
from keypoints.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES

OPENPOSE_SUFFIX = "_keypoints.json"


@dataclass(frozen=True)
class Item:
    """One input: an image, an OpenPose JSON frame (with its image if known), or a video."""

    name: str  # output key: the file's name with its extension (a video's frames go under it); OpenPose: the stem
    kind: str  # "image" | "openpose" | "video" | "sequence" (a folder of OpenPose frames, `name` the folder's)
    path: Path
    image: Path | None = None  # an OpenPose frame's image; a sequence's folder of images
    fps: float | None = None  # a sequence's frame rate


def collect(
    path: Path, images: Path | None = None, sequence_fps: float | None = None
) -> tuple[list[Item], dict[str, str]]:
    """Items under `path` (a file, or a folder's entries sorted by name, not recursive),
    and every other entry with the reason it is passed over (broken links, folders,
    hidden files, other file types, and overlays and summaries that bodyfit or
    `python -m keypoints` wrote). `images`: where OpenPose frames' images are.
    `sequence_fps`: `path` is one sequence of OpenPose frames at this frame rate (a folder)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if sequence_fps is not None:
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: --sequence takes a folder of OpenPose *_keypoints.json frames")
        return [Item(path.resolve().name, "sequence", path, images, sequence_fps)], {}
    items: list[Item] = []
    passed: dict[str, str] = {}
    for f in sorted(path.iterdir()) if path.is_dir() else [path]:
        kind, reason = _kind(f)
        if kind is None:
            passed[f.name] = reason
            continue
        if kind == "openpose":  # x_keypoints.json -> key x (no input's key lacks an extension but these)
            stem = f.name[: -len(OPENPOSE_SUFFIX)]
            items.append(Item(stem, kind, f, find_image(images, stem)))
        else:
            items.append(Item(f.name, kind, f))
    return items, passed


def _kind(f: Path) -> tuple[str | None, str]:
    """("image" | "video" | "openpose", "") for an input, else (None, why it is passed over)."""
    suffix = f.suffix.lower()
    if f.is_symlink() and not f.exists():
        return None, "broken link: its target does not exist"
    if f.is_dir():
        return None, "a folder (folders are not searched: pass it as the input)"
    if f.name.startswith("."):
        return None, "hidden file"
    if f.name in ("summary.json", "config.yaml", "run.log") or f.stem.endswith(("_overlay", ".overlay")):
        return None, "an output of bodyfit or python -m keypoints"
    if suffix in IMAGE_SUFFIXES:
        return "image", ""
    if suffix in VIDEO_SUFFIXES:
        return "video", ""
    if f.name.endswith(OPENPOSE_SUFFIX):
        return "openpose", ""
    return None, "not an image, video or OpenPose *_keypoints.json"


def find_image(folder: Path | None, stem: str) -> Path | None:
    """The image named `stem` in `folder` (any image suffix), if there is one."""
    if folder is None:
        return None
    for f in sorted(folder.glob(f"{stem}.*")):
        if f.suffix.lower() in IMAGE_SUFFIXES:
            return f
    return None


def load_item(
    item: Item, detect: Callable[[np.ndarray, str], keypoints.Keypoints], cfg: DictConfig
) -> tuple[list[PersonTargets], str | None, np.ndarray | None]:
    """(the chosen people, why the frame is skipped or None, BGR image or None) of an image or
    OpenPose item. Raises KeypointsError for a file that cannot be read."""
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
    people, reason = people_targets(kp, size, cfg)
    return people, reason, image
