"""COCO-style keypoint JSON: COCO-17 and COCO-WholeBody (133), read and written.

Accepted layouts, as common tools write them:
- results: a list of people {"image_id", "keypoints": [x, y, score, ...], "score"};
- dataset: {"images": [...], "annotations": [...]} with visibility flags (0, 1, 2)
  instead of scores, WholeBody's parts in foot_kpts, face_kpts, lefthand_kpts,
  righthand_kpts;
- per-point lists: "keypoints": [[x, y], ...] with "keypoint_scores" (MMPose);
- a single person object.
The set is told by the point count: 17 (coco17), 23 (coco23), 133 (WholeBody,
split into a coco23 body, hands and face).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .files import atomic_write_json, float_list, read_json
from .maps import convert, split_wholebody
from .types import FACE_POINTS, HAND_POINTS, Keypoints, KeypointsError

_SETS = {17: "coco17", 23: "coco23", 133: "wholebody133"}
_WHOLEBODY_KEYS = ("foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts")
_NOT_COCO = "is not COCO keypoint JSON (expected a list of people with 'keypoints', or an object with 'annotations')"


def _person_points(path: Path, index: int, ann: object, flags: bool) -> np.ndarray:
    if not isinstance(ann, dict) or "keypoints" not in ann:
        raise KeypointsError(f"{path}: entry {index} has no 'keypoints'; {path.name} {_NOT_COCO}")
    values = list(ann["keypoints"])
    if all(k in ann for k in _WHOLEBODY_KEYS):
        for key in _WHOLEBODY_KEYS:
            values += list(ann[key])
    try:
        arr = np.asarray(values, np.float32)
    except (TypeError, ValueError):
        raise KeypointsError(f"{path}: entry {index}: 'keypoints' is not a list of numbers") from None
    if arr.ndim == 2 and arr.shape[1] in (2, 3):
        scores = ann.get("keypoint_scores")
        conf = (
            np.asarray(scores, np.float32)
            if scores is not None
            else (arr[:, 2] if arr.shape[1] == 3 else np.ones(len(arr), np.float32))
        )
        if conf.shape != (len(arr),):
            raise KeypointsError(f"{path}: entry {index}: {len(conf)} keypoint_scores for {len(arr)} points")
        arr = np.column_stack([arr[:, :2], conf])
    elif arr.ndim == 1 and arr.size % 3 == 0:
        arr = arr.reshape(-1, 3)
    else:
        raise KeypointsError(f"{path}: entry {index}: 'keypoints' must be flat x, y, score triples")
    if len(arr) not in _SETS:
        raise KeypointsError(
            f"{path}: entry {index} has {len(arr)} keypoints; expected 17 (COCO), "
            f"23 (COCO + feet) or 133 (COCO-WholeBody)"
        )
    arr[:, 2] = (arr[:, 2] > 0) if flags else np.clip(arr[:, 2], 0, 1)
    return arr


def read_coco(path: str | os.PathLike) -> list[Keypoints]:
    """One `Keypoints` per image in the file, in file order (images listed in a
    dataset file without people give P = 0). Scores are clipped to [0, 1];
    dataset visibility flags become confidence 1 (labelled) or 0."""
    p = Path(path)
    data = read_json(p)
    images: dict[object, dict] = {}
    flags = False
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        anns, flags = data["annotations"], True
        images = {im.get("id"): im for im in data.get("images", []) if isinstance(im, dict)}
    elif isinstance(data, dict) and "keypoints" in data:
        anns = [data]
    elif isinstance(data, list):
        anns = data
    else:
        raise KeypointsError(f"{p} {_NOT_COCO}; OpenPose files are read by keypoints.read_openpose")
    groups: dict[object, list[np.ndarray]] = {image_id: [] for image_id in images}
    for i, ann in enumerate(anns):
        points = _person_points(p, i, ann, flags)
        if not ann.get("iscrowd"):
            groups.setdefault(ann.get("image_id"), []).append(points)
    return [_frame(p, image_id, people, images.get(image_id, {})) for image_id, people in groups.items()]


def _frame(path: Path, image_id: object, people: list[np.ndarray], image: dict) -> Keypoints:
    sizes = {len(a) for a in people}
    if len(sizes) > 1:
        raise KeypointsError(f"{path}: image {image_id} mixes people with {sorted(sizes)} keypoints")
    body_set = _SETS[sizes.pop()] if sizes else "coco17"
    size = (image["width"], image["height"]) if "width" in image and "height" in image else None
    source = image.get("file_name") or (f"{path}#image_id={image_id}" if image_id is not None else str(path))
    body = np.stack(people) if people else np.zeros((0, 17, 3), np.float32)
    kp = Keypoints(body_set, body, image_size=size, source=str(source))
    return split_wholebody(kp) if body_set == "wholebody133" else kp


def _wholebody_row(kp: Keypoints, i: int) -> np.ndarray:
    parts = [convert(kp, "coco23").body[i]]
    for field, count in (("face", FACE_POINTS), ("left_hand", HAND_POINTS), ("right_hand", HAND_POINTS)):
        part = getattr(kp, field)
        parts.append(np.zeros((count, 3), np.float32) if part is None else part[i])
    return np.concatenate(parts)


def write_coco(frames: Keypoints | Sequence[Keypoints], path: str | os.PathLike) -> None:
    """Write COCO results JSON atomically: one entry per person, image_id the
    frame_index (else the position in `frames`). COCO-17 for body-only
    detections, COCO-WholeBody (133) when hands or face are present."""
    frames = [frames] if isinstance(frames, Keypoints) else list(frames)
    entries = []
    for n, kp in enumerate(frames):
        if kp.body_set == "wholebody133":
            kp = split_wholebody(kp)
        whole = any(getattr(kp, f) is not None for f in ("left_hand", "right_hand", "face"))
        body17 = None if whole else convert(kp, "coco17").body
        for i in range(kp.num_people):
            row = _wholebody_row(kp, i) if whole else body17[i]
            entries.append(
                {
                    "image_id": kp.frame_index if kp.frame_index is not None else n,
                    "category_id": 1,
                    "keypoints": float_list(row),
                    "score": float(str(np.float32(kp.body[i, :, 2].mean()))),
                }
            )
    atomic_write_json(path, entries)
