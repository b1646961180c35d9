"""The `Keypoints` container shared by detectors, readers and the fitter."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

# Number of points per body set a `Keypoints.body` may hold.
BODY_SET_SIZES: dict[str, int] = {
    "mediapipe33": 33,
    "body25": 25,
    "coco17": 17,
    "coco23": 23,
    "wholebody133": 133,
}
HAND_POINTS = 21
FACE_POINTS = 68
# A person whose skeleton came from this model has only the points of this set
# (held in the frame's body set by point name, the others at confidence 0).
ORIGIN_BODY_SETS: dict[str, str] = {"movenet": "coco17"}


class KeypointsError(ValueError):
    """A keypoint file, image or video that cannot be used (the message names it)."""


def _as_points(name: str, value: object, num_points: int, num_people: int | None) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.size == 0:
        arr = arr.reshape(0, num_points, 3)
    if arr.ndim != 3 or arr.shape[1:] != (num_points, 3):
        raise ValueError(f"{name} must have shape (P, {num_points}, 3), got {arr.shape}")
    if num_people is not None and arr.shape[0] != num_people:
        raise ValueError(f"{name} holds {arr.shape[0]} people but body holds {num_people}")
    return arr


@dataclass
class Keypoints:
    """One frame's 2D detections for P people.

    Every array is float32 (P, K, 3): x, y in pixels of the full image and a
    confidence in [0, 1] (0 means missing). Left/right are the subject's.
    `pupils` keeps OpenPose face points 68-69 (right, left pupil) when a file has them.
    `rejected`: skeletons a detector found but dropped, each as
    "where: gate: reason" (see keypoints.gates).
    `origins`: per person, the model that gave the skeleton ("blazepose", or
    "movenet": MoveNet MultiPose's own COCO-17 points for a person BlazePose did
    not find, see ORIGIN_BODY_SETS); None when not known (keypoint files).
    """

    body_set: str
    body: np.ndarray
    left_hand: np.ndarray | None = None
    right_hand: np.ndarray | None = None
    face: np.ndarray | None = None
    pupils: np.ndarray | None = None
    image_size: tuple[int, int] | None = None  # (width, height)
    source: str = ""
    frame_index: int | None = None
    timestamp_s: float | None = None
    rejected: list[str] = field(default_factory=list)
    origins: list[str] | None = None

    def __post_init__(self) -> None:
        if self.body_set not in BODY_SET_SIZES:
            raise ValueError(f"unknown body_set {self.body_set!r}; known: {sorted(BODY_SET_SIZES)}")
        self.body = _as_points("body", self.body, BODY_SET_SIZES[self.body_set], None)
        p = self.body.shape[0]
        for name, k in (("left_hand", HAND_POINTS), ("right_hand", HAND_POINTS), ("face", FACE_POINTS), ("pupils", 2)):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, _as_points(name, value, k, p))
        if self.image_size is not None:
            self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        if self.origins is not None:
            self.origins = [str(o) for o in self.origins]
            if len(self.origins) != p:
                raise ValueError(f"origins has {len(self.origins)} entries but body holds {p} people")

    @classmethod
    def empty(cls, body_set: str, **fields: object) -> "Keypoints":
        """No people (P = 0) in the given body set; other fields as keywords."""
        return cls(body_set, np.zeros((0, BODY_SET_SIZES[body_set], 3), np.float32), **fields)

    @property
    def num_people(self) -> int:
        return int(self.body.shape[0])

    def parts(self) -> dict[str, np.ndarray]:
        """The non-empty point arrays by field name (body first)."""
        names = ("body", "left_hand", "right_hand", "face", "pupils")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def select(self, index: int | Sequence[int]) -> "Keypoints":
        """A copy holding only the given person (or list of people)."""
        idx = [index] if isinstance(index, (int, np.integer)) else list(index)
        for i in idx:
            if not -self.num_people <= i < self.num_people:
                raise IndexError(f"person {i} out of range for {self.num_people} people")
        origins = None if self.origins is None else [self.origins[i] for i in idx]
        return replace(self, origins=origins, **{n: a[idx].copy() for n, a in self.parts().items()})

    def person_boxes(self, min_confidence: float = 0.1) -> np.ndarray:
        """(P, 4) float32 x0, y0, x1, y1 around each person's points above
        `min_confidence` (all parts); NaN for a person with none."""
        pts = np.concatenate(list(self.parts().values()), axis=1)
        boxes = np.full((self.num_people, 4), np.nan, np.float32)
        for i, person in enumerate(pts):
            xy = person[person[:, 2] > min_confidence, :2]
            if len(xy):
                boxes[i] = (*xy.min(0), *xy.max(0))
        return boxes

    def chosen(self, by: str | Sequence[float] = "largest") -> list[int]:
        """Indices of the people `by` keeps: "all" (in order), or the one with the "largest" box,
        the most "confident" body, or the best overlap with a given (x0, y0, x1, y1) box."""
        if self.num_people == 0:
            return []
        if isinstance(by, str) and by == "all":
            return list(range(self.num_people))
        boxes = self.person_boxes()
        if isinstance(by, str):
            if by == "largest":
                score = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            elif by == "confident":
                score = self.body[:, :, 2].mean(axis=1)
            else:
                raise ValueError(f"choose(by={by!r}): use 'all', 'largest', 'confident' or a box")
        else:
            score = box_iou(np.asarray(by, np.float32)[None], boxes)[0]
        return [int(np.argmax(np.nan_to_num(score, nan=-1.0)))]

    def choose(self, by: str | Sequence[float] = "largest") -> "Keypoints":
        """The people `by` keeps (see `chosen`): one, or "all". Empty stays empty."""
        return self.select(self.chosen(by))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of x0, y0, x1, y1 boxes (NaN boxes give 0)."""
    a = np.asarray(a, np.float64)[:, None]
    b = np.asarray(b, np.float64)[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    union = _area(a) + _area(b) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return np.nan_to_num(iou, nan=0.0)


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
