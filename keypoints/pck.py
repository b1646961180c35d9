"""Score detections against hand-marked people (tests/data/people/labels.json, issue 12):
PCK at a share of each person's height, people found, and skeletons that span two people.

A labelled person has a box, a height in pixels and a few COCO-17-named keypoints;
`sides_sure=False` (small people seen from behind or the side) lets a skeleton
count with its left and right swapped. Detected skeletons (mediapipe33) are
matched one to one to labelled people by the number of their points within the
threshold (Hungarian assignment, at least MIN_HITS points, or all of a person's
labelled points when fewer)."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from body.skeleton import mirrored_name

from .maps import set_names

LABELS = Path(__file__).resolve().parents[1] / "tests" / "data" / "people" / "labels.json"
MIN_HITS = 2  # points within the threshold for a skeleton to count as a labelled person's
_INDEX = {n: i for i, n in enumerate(set_names("mediapipe33"))}


def fetched_dir() -> Path:
    """Where scripts/setup.sh puts the photos that are not redistributed in the repository."""
    return Path(sys.prefix) / "share" / "bodyfit" / "people"


@dataclass
class Person:
    box: tuple[float, float, float, float]
    height: float
    keypoints: dict[str, tuple[float, float]]
    sides_sure: bool = True
    partial: bool = False

    def hits(self, body: np.ndarray, share: float = 0.1) -> np.ndarray:
        """Per labelled keypoint, whether the (33, 3) mediapipe33 skeleton's point lies
        within share x height (left/right swapped too when the sides are unsure)."""
        names = list(self.keypoints)
        target = np.array([self.keypoints[n] for n in names], np.float64)
        best = np.zeros(len(names), bool)
        for swap in (False, True) if not self.sides_sure else (False,):
            idx = [_INDEX[mirrored_name(n) if swap else n] for n in names]
            ok = np.linalg.norm(body[idx, :2] - target, axis=1) <= share * self.height
            best = ok if ok.sum() > best.sum() else best
        return best


@dataclass
class LabelledImage:
    name: str
    path: Path | None  # None when a fetched photo is not installed
    source: str
    licence: str
    people: list[Person] = field(default_factory=list)


def load_labels(path: Path = LABELS) -> list[LabelledImage]:
    """The labelled photos, in file order; a fetched photo that is missing or fails
    its sha256 check gets path None."""
    doc = json.loads(Path(path).read_text())
    out = []
    for name, rec in doc["images"].items():
        file = (fetched_dir() if rec.get("fetched") else Path(path).parent) / name
        if not file.is_file() or ("sha256" in rec and hashlib.sha256(file.read_bytes()).hexdigest() != rec["sha256"]):
            file = None
        people = [
            Person(
                tuple(p["box"]),
                float(p["height"]),
                {k: tuple(v) for k, v in p["keypoints"].items()},
                p.get("sides_sure", True),
                p.get("partial", False),
            )
            for p in rec["people"]
        ]
        out.append(LabelledImage(name, file, rec["source"], rec["licence"], people))
    return out


@dataclass
class Score:
    """One image's detections against its labels."""

    correct: int  # labelled keypoints within the threshold on the person's matched skeleton
    total: int  # labelled keypoints
    found: list[bool]  # per labelled person: matched to a skeleton of its own
    spanning: list[int]  # detected skeletons with MIN_HITS points on each of two labelled people
    match: dict[int, int]  # detected skeleton -> labelled person

    @property
    def pck(self) -> float:
        return self.correct / max(self.total, 1)


def score(bodies: np.ndarray, people: list[Person], share: float = 0.1) -> Score:
    """Match (P, 33, 3) mediapipe33 skeletons to labelled people and score them."""
    hits = np.array([[p.hits(b, share).sum() for p in people] for b in bodies], int).reshape(len(bodies), len(people))
    rows, cols = linear_sum_assignment(-hits) if hits.size else ((), ())
    need = [min(MIN_HITS, len(p.keypoints)) for p in people]
    match = {int(r): int(c) for r, c in zip(rows, cols) if hits[r, c] >= need[c]}
    correct = sum(int(hits[r, c]) for r, c in match.items())
    found = [c in match.values() for c in range(len(people))]
    spanning = [i for i in range(len(bodies)) if _spans(bodies[i], people, share)]
    return Score(correct, sum(len(p.keypoints) for p in people), found, spanning, match)


def _spans(body: np.ndarray, people: list[Person], share: float) -> bool:
    """Whether MIN_HITS of the skeleton's points lie on one labelled person and MIN_HITS
    others on another (each point given to the nearest labelled person it hits)."""
    owner: dict[str, tuple[float, int]] = {}  # detected point name -> (distance / height, person)
    for k, p in enumerate(people):
        for name, xy in p.keypoints.items():
            for cand in {name, mirrored_name(name)} if not p.sides_sure else {name}:
                d = float(np.linalg.norm(body[_INDEX[cand], :2] - xy)) / p.height
                if d <= share and d < owner.get(cand, (np.inf, -1))[0]:
                    owner[cand] = (d, k)
    counts = np.bincount([k for _, k in owner.values()], minlength=len(people))
    return int((counts >= MIN_HITS).sum()) >= 2
