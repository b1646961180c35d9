"""OpenPose JSON: read and write one frame's file, read a folder of per-frame files.

Layout: {"version": 1.3, "people": [{"pose_keypoints_2d": [x, y, c, ...] (BODY_25,
75 values; the older COCO-18 model's 54 are accepted), "hand_left_keypoints_2d",
"hand_right_keypoints_2d" (63 each), "face_keypoints_2d" (210: iBUG 68 + 2 pupils)}]}.
Missing or empty arrays mean "not detected"; (0, 0, 0) points mean missing.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from .files import atomic_write_json, float_list, read_json
from .maps import convert, convert_points, set_names
from .types import FACE_POINTS, HAND_POINTS, Keypoints, KeypointsError

# The COCO-18 model of OpenPose, converted to BODY_25 on reading.
OPENPOSE_COCO18: tuple[str, ...] = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
_PARTS = (("left_hand", "hand_left_keypoints_2d"), ("right_hand", "hand_right_keypoints_2d"))
_FRAME_NUMBER = re.compile(r"_(\d+)_keypoints\.json$")
_NOT_OPENPOSE = "is not OpenPose JSON (expected an object with a 'people' list)"


def _array(path: Path, person: dict, key: str, sizes: tuple[int, ...]) -> np.ndarray | None:
    values = person.get(key) or person.get(key.removesuffix("_2d"))  # OpenPose <= 1.1 names
    if not values:
        return None
    try:
        arr = np.asarray(values, np.float32).reshape(-1, 3)
    except (TypeError, ValueError):
        raise KeypointsError(f"{path}: '{key}' must be a flat list of x, y, confidence numbers") from None
    if len(arr) not in sizes:
        raise KeypointsError(f"{path}: '{key}' has {len(arr)} points, expected {' or '.join(map(str, sizes))}")
    return arr


def _stack(arrays: list[np.ndarray | None], count: int) -> np.ndarray | None:
    if all(a is None for a in arrays):
        return None
    return np.stack([np.zeros((count, 3), np.float32) if a is None else a for a in arrays])


def read_openpose(path: str | os.PathLike) -> Keypoints:
    """One OpenPose JSON file as body25 `Keypoints` (P = 0 for an empty
    `people`). Parts no person has are None; a person missing a part others
    have gets zeros. Face 70 is split into `face` (68) and `pupils` (2)."""
    p = Path(path)
    data = read_json(p)
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise KeypointsError(f"{p} {_NOT_OPENPOSE}; COCO files are read by keypoints.read_coco")
    bodies, parts = [], {name: [] for name, _ in _PARTS}
    faces, pupils = [], []
    for person in data["people"]:
        if not isinstance(person, dict):
            raise KeypointsError(f"{p} {_NOT_OPENPOSE}: a person entry is not an object")
        body = _array(p, person, "pose_keypoints_2d", (25, 18))
        if body is None:
            body = np.zeros((25, 3), np.float32)
        elif len(body) == 18:
            body = convert_points(body, OPENPOSE_COCO18, set_names("body25"))
        bodies.append(body)
        for name, key in _PARTS:
            parts[name].append(_array(p, person, key, (HAND_POINTS,)))
        face = _array(p, person, "face_keypoints_2d", (70, FACE_POINTS))
        faces.append(None if face is None else face[:FACE_POINTS])
        pupils.append(None if face is None or len(face) == FACE_POINTS else face[FACE_POINTS:])
    return Keypoints(
        "body25",
        np.stack(bodies) if bodies else np.zeros((0, 25, 3), np.float32),
        left_hand=_stack(parts["left_hand"], HAND_POINTS),
        right_hand=_stack(parts["right_hand"], HAND_POINTS),
        face=_stack(faces, FACE_POINTS),
        pupils=_stack(pupils, 2),
        source=str(p),
    )


def read_openpose_folder(folder: str | os.PathLike) -> list[Keypoints]:
    """The per-frame files OpenPose writes for a video (`*_keypoints.json`),
    in frame order; frame_index from the number in each name."""
    d = Path(folder)
    if not d.is_dir():
        raise KeypointsError(f"{d}: not a folder of OpenPose JSON files")
    files = sorted(d.glob("*_keypoints.json"), key=lambda f: (frame_number(f) or 0, f.name))
    if not files:
        raise KeypointsError(f"{d}: no '*_keypoints.json' files; point to OpenPose's --write_json folder")
    return [replace(read_openpose(f), frame_index=frame_number(f)) for f in files]


def frame_number(path: Path) -> int | None:
    """The frame number OpenPose puts before `_keypoints.json` (None when the name has none)."""
    m = _FRAME_NUMBER.search(path.name)
    return int(m.group(1)) if m else None


def to_openpose_dict(kp: Keypoints) -> dict:
    """The OpenPose JSON object of a detection (body converted to BODY_25)."""
    body = convert(kp, "body25")
    people = []
    for i in range(body.num_people):
        face = None
        if body.face is not None:
            pupils = body.pupils[i] if body.pupils is not None else np.zeros((2, 3), np.float32)
            face = np.concatenate([body.face[i], pupils])
        people.append(
            {
                "person_id": [-1],
                "pose_keypoints_2d": float_list(body.body[i]),
                "face_keypoints_2d": float_list(face),
                "hand_left_keypoints_2d": float_list(None if body.left_hand is None else body.left_hand[i]),
                "hand_right_keypoints_2d": float_list(None if body.right_hand is None else body.right_hand[i]),
                "pose_keypoints_3d": [],
                "face_keypoints_3d": [],
                "hand_left_keypoints_3d": [],
                "hand_right_keypoints_3d": [],
            }
        )
    return {"version": 1.3, "people": people}


def write_openpose(kp: Keypoints, path: str | os.PathLike) -> None:
    """Write OpenPose JSON atomically (temporary file, then os.replace).
    Other body sets are converted to BODY_25 by point name (MediaPipe's foot
    index becomes the big toe; neck and mid-hip are midpoints)."""
    atomic_write_json(path, to_openpose_dict(kp))
