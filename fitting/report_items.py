"""A run folder's entries for the report: summary.json's items with what their .npz files hold.

Every entry of summary.json (fitted, already done, skipped, failed) becomes an `Item`; a
fitted one's reprojection error and body pose come from its `KEY.npz`. A video's (or a
sequence's) frames (`clip.mp4/000012`, or `clip.mp4/000012.person_1`) know their video and
frame number.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fitting.outputs import PERSON_INFIX, frame_paths

STATUSES = ("fitted", "already_done", "skipped", "failed")


class ReportError(ValueError):
    """The folder cannot be reported on (one line naming it and the fix)."""


@dataclass
class Item:
    """One summary entry: an image, a video frame, or a person of either."""

    key: str
    status: str  # one of STATUSES
    reason: str = ""
    px: float = float("nan")  # mean reprojection error, px
    rel: float = float("nan")  # ... as a fraction of the person's height
    body_pose: np.ndarray | None = None  # (21, 3) axis-angle
    frame: str = ""  # the frame's key (the key without `.person_<id>`)
    person: int = 0
    video: str = ""  # "clip.mp4" for a frame of a video (or of a sequence, a folder of frames)
    index: int = -1  # the frame's number in its video

    @property
    def done(self) -> bool:
        return self.status in ("fitted", "already_done")


def read_summary(out_dir: Path) -> dict:
    """summary.json of the run folder; an empty summary when the run wrote none yet."""
    if not out_dir.is_dir():
        raise ReportError(f"{out_dir}: no such folder; give the --out folder of a run_fit.py run")
    path = out_dir / "summary.json"
    if not path.is_file():
        return {"counts": {s: 0 for s in STATUSES}}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ReportError(f"{path}: unreadable ({e}); run run_fit.py into {out_dir} again") from e


def load_items(out_dir: Path, summary: dict) -> list[Item]:
    """The summary's entries in its order (fitted, already done, skipped, failed), each with its frame's data."""
    items = []
    for status in STATUSES:
        entries = summary.get(status) or []
        reasons = entries if isinstance(entries, dict) else dict.fromkeys(entries, "")
        for key, reason in reasons.items():
            item = Item(key, status, reason)
            _place(out_dir, item)
            if item.done:
                _read_fit(out_dir, item)
            items.append(item)
    return items


def _place(out_dir: Path, item: Item) -> None:
    """The item's frame key, person id, and video and frame number for a video's frame."""
    frame, infix, person = item.key.rpartition(PERSON_INFIX)
    if infix and person.isdigit():
        item.frame, item.person = frame, int(person)
    else:
        item.frame = item.key
    video, _, number = item.frame.rpartition("/")
    if video and number.isdigit() and (out_dir / video).is_dir():
        item.video, item.index = video, int(number)


def _read_fit(out_dir: Path, item: Item) -> None:
    """Reprojection error and body pose from the item's npz (left unknown when it is unreadable)."""
    try:
        with np.load(frame_paths(out_dir, item.key)["npz"], allow_pickle=False) as data:
            item.px = float(data["reprojection_px"]) if "reprojection_px" in data.files else item.px
            item.rel = float(data["reprojection_rel"]) if "reprojection_rel" in data.files else item.rel
            item.body_pose = data["body_pose"].reshape(-1, 3) if "body_pose" in data.files else None
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
        return


def detections(out_dir: Path, video: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(frame numbers, people detected) from the video's cached detections `keypoints.npz`, if any."""
    try:
        with np.load(out_dir / video / "keypoints.npz", allow_pickle=False) as data:
            return data["frame_index"], data["people"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile):
        return None
