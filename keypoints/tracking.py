"""People's identities across the frames of a video: tracks by assignment.

    tracks = track_people(frames, max_gap=10)  # frames: one Keypoints per frame, in order
    for t in tracks: t.id, t.people  # {frame index: the person's index in that frame's detections}

Each frame's people are assigned to the live tracks by `scipy.optimize.linear_sum_assignment`
on a cost of three cues, each measured against the track's *prediction* for this frame (a
constant-velocity model: the mean motion of the points seen in consecutive matches, smoothed;
points the person hid keep moving with the track):

- pose and motion: the mean distance of the points both have (the track's moved by its
  predicted motion) over the larger box height: the person must be where the track is going
  and in its pose (people facing opposite ways, or in another stride, differ here even when
  their boxes coincide);
- scale: |log| of the ratio of the spreads of those common points (people at other depths
  differ; a person half hidden behind another does not, as only shared points count);
- box overlap: half of 1 - IoU of the predicted box and the person's box (boxes around the
  points above `min_confidence`).

Pairs whose point distance exceeds `max_distance` box heights (plus 0.1 per missed frame) are
never matched. A track that finds nobody keeps predicting for up to `max_gap` frames and
takes back its person when they reappear near the predicted place (re-identification after
an occlusion or missed detections); later it ends. People matched to no track start new
ones. Ids count from 0 in order of first appearance. Box heights are not gated: a person
half hidden has a small box of the points still seen.

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
_SMOOTH = 0.3  # weight of the newest step in the track's velocity


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
    points: np.ndarray  # (K, 3) last known position of each point (moved on with the track when unseen)
    frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px per frame
    people: dict[int, int] = field(default_factory=dict)

    def predicted_box(self, frame: int) -> np.ndarray:
        return self.box + np.tile(self.velocity * (frame - self.frame), 2)

    def predicted_points(self, frame: int) -> np.ndarray:
        moved = self.points.copy()
        moved[:, :2] += self.velocity * (frame - self.frame)
        return moved

    def update(self, frame: int, person: int, box: np.ndarray, points: np.ndarray, min_confidence: float) -> None:
        gap = frame - self.frame
        both = (self.points[:, 2] > min_confidence) & (points[:, 2] > min_confidence)
        if both.sum() >= 3:  # the points' mean motion: robust to points hidden in one of the frames
            step = (points[both, :2] - self.points[both, :2]).mean(0) / gap
        else:
            step = ((box[:2] + box[2:]) - (self.box[:2] + self.box[2:])) / 2 / gap
        self.velocity = step if len(self.people) == 1 else _SMOOTH * step + (1 - _SMOOTH) * self.velocity
        seen = points[:, 2] > min_confidence
        self.points = np.where(seen[:, None], points, self.predicted_points(frame))
        self.box, self.frame = box, frame
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
                live[r].update(
                    frame, people[c], boxes[people[c]].astype(np.float64), kp.body[people[c]], min_confidence
                )
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
    """Pose-and-motion + scale + overlap cost of each track's prediction against each person (module docstring)."""
    cost = np.full((len(live), len(boxes)), _NEVER)
    for r, s in enumerate(live):
        predicted = s.predicted_box(frame)
        iou = box_iou(predicted[None], boxes)[0]
        points = s.predicted_points(frame)
        limit = max_distance + 0.1 * (frame - s.frame - 1)
        for c, (box, body) in enumerate(zip(boxes, bodies)):
            h_track, h_person = max(predicted[3] - predicted[1], 1.0), max(box[3] - box[1], 1.0)
            height = max(h_track, h_person)
            both = (points[:, 2] > min_confidence) & (body[:, 2] > min_confidence)
            if both.sum() >= 3:
                mine, theirs = points[both, :2], body[both, :2]
                pose = np.linalg.norm(mine - theirs, axis=1).mean() / height
                spread = [np.sqrt(((p - p.mean(0)) ** 2).sum(1).mean()) + 1.0 for p in (mine, theirs)]
                scale = abs(np.log(spread[1] / spread[0]))
            else:
                pose = np.linalg.norm((predicted[:2] + predicted[2:]) / 2 - (box[:2] + box[2:]) / 2) / height
                scale = abs(np.log(h_person / h_track))
            if pose <= limit:
                cost[r, c] = pose + scale + 0.5 * (1 - iou[c])
    return cost
