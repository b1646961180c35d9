"""Overlays: skeletons, hands and faces drawn on the image."""

from __future__ import annotations

import cv2
import numpy as np

from .maps import set_names, split_wholebody
from .types import Keypoints

# Subject's left in blue, right in red, the midline in green (BGR).
_LEFT, _RIGHT, _MID, _FACE = (255, 128, 0), (0, 0, 255), (0, 200, 0), (0, 220, 255)

_BODY_EDGES: tuple[tuple[str, str], ...] = (
    ("left_shoulder", "right_shoulder"),
    ("left_hip", "right_hip"),
    ("nose", "neck"),
    ("neck", "mid_hip"),
    *(
        (f"{s}_{a}", f"{s}_{b}")
        for s in ("left", "right")
        for a, b in (
            ("shoulder", "elbow"),
            ("elbow", "wrist"),
            ("shoulder", "hip"),
            ("hip", "knee"),
            ("knee", "ankle"),
            ("ankle", "heel"),
            ("ankle", "big_toe"),
            ("big_toe", "small_toe"),
            ("heel", "foot_index"),
            ("ankle", "foot_index"),
            ("wrist", "pinky"),
            ("wrist", "index"),
            ("wrist", "thumb"),
            ("pinky", "index"),
            ("eye", "ear"),
            ("eye_inner", "eye"),
            ("eye", "eye_outer"),
        )
    ),
    ("nose", "left_eye_inner"),
    ("nose", "right_eye_inner"),
    ("nose", "left_eye"),
    ("nose", "right_eye"),
    ("mouth_left", "mouth_right"),
)
_HAND_EDGES = tuple((0 if k == 1 else 4 * f + k - 1, 4 * f + k) for f in range(5) for k in range(1, 5))
# iBUG-68 outlines: jaw, brows, nose bridge, nostrils; eyes and lips closed.
_FACE_LINES = (
    (0, 17, False),
    (17, 22, False),
    (22, 27, False),
    (27, 31, False),
    (31, 36, False),
    (36, 42, True),
    (42, 48, True),
    (48, 60, True),
    (60, 68, True),
)


def _side_color(name: str) -> tuple[int, int, int]:
    return _LEFT if name.startswith("left") else _RIGHT if name.startswith("right") else _MID


def _line(img: np.ndarray, a: np.ndarray, b: np.ndarray, color: tuple, thick: int, min_conf: float) -> None:
    if a[2] > min_conf and b[2] > min_conf:
        cv2.line(img, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), color, thick, cv2.LINE_AA)


def draw_keypoints(image: np.ndarray, kp: Keypoints, min_confidence: float = 0.3) -> np.ndarray:
    """A BGR copy of `image` with every person's points above `min_confidence`;
    a skeleton from MoveNet's own points (`kp.origins`) is tagged "MoveNet"."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    if kp.body_set == "wholebody133":
        kp = split_wholebody(kp)
    thick = max(1, round(max(out.shape[:2]) / 400))
    names = set_names(kp.body_set)
    index = {n: i for i, n in enumerate(names)}
    edges = [(index[a], index[b], _side_color(a)) for a, b in _BODY_EDGES if a in index and b in index]
    for p in range(kp.num_people):
        body = kp.body[p]
        for i, j, color in edges:
            _line(out, body[i], body[j], color, thick + 1, min_confidence)
        for name, pt in zip(names, body):
            if pt[2] > min_confidence:
                cv2.circle(out, (int(pt[0]), int(pt[1])), thick + 2, _side_color(name), -1, cv2.LINE_AA)
        seen = body[body[:, 2] > min_confidence, :2]
        if kp.origins and kp.origins[p] != "blazepose" and len(seen):
            x, y = int(seen[:, 0].min()), int(seen[:, 1].min()) - 4 * thick
            cv2.putText(out, "MoveNet", (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, _MID, thick, cv2.LINE_AA)
        for hand, color in ((kp.left_hand, _LEFT), (kp.right_hand, _RIGHT)):
            if hand is not None:
                for i, j in _HAND_EDGES:
                    _line(out, hand[p, i], hand[p, j], color, thick, min_confidence)
        if kp.face is not None:
            face = kp.face[p]
            for start, stop, closed in _FACE_LINES:
                for i in range(start, stop - (0 if closed else 1)):
                    j = i + 1 if i + 1 < stop else start
                    _line(out, face[i], face[j], _FACE, 1, min_confidence)
    return out
