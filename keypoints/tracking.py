"""People's identities across the frames of a video: tracks by assignment.

    tracks = track_people(frames, max_gap=10)  # frames: one Keypoints per frame, in order
    for t in tracks: t.id, t.people  # {frame index: the person's index in that frame's detections}

Each frame's people are assigned to the live tracks by `scipy.optimize.linear_sum_assignment`
on a cost of three cues, each measured against the track's *prediction* for this frame (a
constant-velocity model of its box, smoothed over the frames it was seen in):

- box overlap: 1 - IoU of the predicted box and the person's box (boxes around the points
  above `min_confidence`);
- pose: the mean distance of the points both have, the track's last points moved by its
  predicted motion, over the larger box height (people facing opposite ways, or in another
  stride, differ here even when their boxes coincide);
- motion: the distance of the box centres over the box height.

Pairs beyond the gates (pose or centre distance over `max_distance` box heights, plus 0.1 per
missed frame; heights more than 2x apart) are never matched. A track that finds nobody keeps
predicting for up to `max_gap` frames and takes back its person when they reappear near the
predicted box (re-identification after an occlusion or missed detections); later it ends.
People matched to no track start new ones. Ids count from 0 in order of first appearance.

`method="iou"` is the plain baseline the benchmark compares against: the last seen box of
each track (no prediction, no pose), matched by IoU >= `min_iou` with the same assignment and
the same `max_gap`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .types import Keypoints, box_iou

METHODS = ("motion", "iou")
_NEVER = 1e6  # cost of a gated pair
_SMOOTH = 0.5  # weight of the newest step in the track's velocity


@dataclass(frozen=True)
class Track:
    """One person across frames: frame index -> the person's index in that frame's detections."""

    id: int
    people: dict[int, int]

    @property
    def first(self) -> int:
        return min(self.people)

    @property
    def last(self) -> int:
        return max(self.people)


@dataclass
class _State:
    id: int
    box: np.ndarray  # (4,) last seen x0, y0, x1, y1
    points: np.ndarray  # (K, 3) last seen points
    frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # box change per frame
    people: dict[int, int] = field(default_factory=dict)

    def predicted_box(self, frame: int) -> np.ndarray:
        return self.box + self.velocity * (frame - self.frame)

    def predicted_points(self, frame: int) -> np.ndarray:
        shift = (self.velocity[:2] + self.velocity[2:]) / 2 * (frame - self.frame)
        moved = self.points.copy()
        moved[:, :2] += shift
        return moved

    def update(self, frame: int, person: int, box: np.ndarray, points: np.ndarray) -> None:
        step = (box - self.box) / (frame - self.frame)
        self.velocity = step if len(self.people) == 1 else _SMOOTH * step + (1 - _SMOOTH) * self.velocity
        self.box, self.points, self.frame = box, points, frame
        self.people[frame] = person


def track_people(
    frames: Sequence[Keypoints],
    max_gap: int = 10,
    method: str = "motion",
    min_confidence: float = 0.3,
    max_distance: float = 0.5,
    min_iou: float = 0.3,
) -> list[Track]:
    """The tracks of `frames` (in order; a frame's `frame_index`, else its position, numbers it).
    People without `min_confidence` points are in no track. See the module docstring."""
    if method not in METHODS:
        raise ValueError(f"track_people(method={method!r}): use one of {', '.join(METHODS)}")
    live: list[_State] = []
    ended: list[_State] = []
    count = 0
    for position, kp in enumerate(frames):
        frame = position if kp.frame_index is None else int(kp.frame_index)
        ended += [s for s in live if frame - s.frame > max_gap + 1]
        live = [s for s in live if frame - s.frame <= max_gap + 1]
        boxes = kp.person_boxes(min_confidence)
        people = [i for i in range(kp.num_people) if np.isfinite(boxes[i]).all()]
        if method == "iou":
            cost = _iou_cost(live, boxes[people], min_iou)
        else:
            cost = _motion_cost(live, frame, boxes[people], kp.body[people], min_confidence, max_distance)
        matched: set[int] = set()
        for r, c in zip(*linear_sum_assignment(cost)) if cost.size else ():
            if cost[r, c] < _NEVER:
                live[r].update(frame, people[c], boxes[people[c]].astype(np.float64), kp.body[people[c]])
                matched.add(c)
        for c, i in enumerate(people):
            if c not in matched:
                live.append(_State(count, boxes[i].astype(np.float64), kp.body[i], frame, people={frame: i}))
                count += 1
    return sorted((Track(s.id, s.people) for s in (*ended, *live)), key=lambda t: t.id)


def _iou_cost(live: list[_State], boxes: np.ndarray, min_iou: float) -> np.ndarray:
    """1 - IoU of each track's last box with each person's; pairs below `min_iou` gated."""
    if not live or not len(boxes):
        return np.zeros((len(live), len(boxes)))
    iou = box_iou(np.stack([s.box for s in live]), boxes)
    return np.where(iou >= min_iou, 1 - iou, _NEVER)


def _motion_cost(
    live: list[_State], frame: int, boxes: np.ndarray, bodies: np.ndarray, min_confidence: float, max_distance: float
) -> np.ndarray:
    """Overlap + pose + motion cost of each track's prediction against each person (module docstring)."""
    cost = np.full((len(live), len(boxes)), _NEVER)
    for r, s in enumerate(live):
        gap = frame - s.frame
        predicted = s.predicted_box(frame)
        iou = box_iou(predicted[None], boxes)[0]
        points = s.predicted_points(frame)
        limit = max_distance + 0.1 * (gap - 1)
        for c, (box, body) in enumerate(zip(boxes, bodies)):
            h_track, h_person = predicted[3] - predicted[1], box[3] - box[1]
            height = max(h_track, h_person, 1.0)
            if not 0.5 <= max(h_person, 1.0) / max(h_track, 1.0) <= 2.0:
                continue
            centre = np.linalg.norm((predicted[:2] + predicted[2:]) / 2 - (box[:2] + box[2:]) / 2) / height
            both = (points[:, 2] > min_confidence) & (body[:, 2] > min_confidence)
            pose = (
                np.linalg.norm(points[both, :2] - body[both, :2], axis=1).mean() / height if both.sum() >= 3 else centre
            )
            if pose > limit or centre > limit:
                continue
            cost[r, c] = (1 - iou[c]) + pose + centre
    return cost
