"""Per video or sequence: `tracks.json` and each track's whole motion in one npz.

`tracks.json`: the frame rate and, per track, its id (the `person_id` of its frames'
outputs), first and last frame, frames detected and fitted, how it was fitted (`sequence`,
`still` or `skip`, see `tracking.short`) and its mean reprojection error (px).
`motion.npz` (a video with one track) or `motion.person_<id>.npz` (several): the fitted
frames' parameters stacked along time (`global_orient (T, 3)`, `body_pose (T, 21, 3)`,
hands, jaw, `shape (T, S)`, `transl (T, 3)`, and `expression` for SMPL-X), `frame_index (T,)`,
`frame_names (T,)` (a video's frame numbers, a sequence's file stems), `fps`, `person_id` and
`reprojection_px (T,)`. Both are rebuilt from the frames' npz files after every run, so they
also hold the frames a resumed run found done.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from configs.files import write_npz, write_text
from fitting.outputs import BODY_PARAMS, PERSON_INFIX

MOTION = "motion"


@dataclass(frozen=True)
class TrackRecord:
    """What the files say of one track."""

    id: int
    mode: str  # "sequence" | "still" | "skip"
    frames: list[int]  # frame numbers the track has a person in
    names: list[str]  # those frames' names
    npz: list[Path]  # the person's output npz of each of those frames (there when fitted)
    per_person: bool  # outputs per person (a video with several tracks)


def motion_path(folder: Path, track_id: int, per_person: bool) -> Path:
    """Where a track's motion goes: `motion.npz`, or `motion.person_<id>.npz` beside others."""
    return folder / (f"{MOTION}{PERSON_INFIX}{track_id}.npz" if per_person else f"{MOTION}.npz")


def write_motion_files(folder: Path, tracks: list[TrackRecord], fps: float) -> None:
    """tracks.json and the motion files of `tracks`; motion files of tracks no longer there go."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, written = [], set()
    for t in tracks:
        fitted = [(i, n, a) for i, n, p in zip(t.frames, t.names, t.npz) if (a := _read(p)) is not None]
        px = [float(a["reprojection_px"]) for _, _, a in fitted if np.isfinite(a["reprojection_px"])]
        rows.append(
            {
                "id": t.id,
                "first_frame": t.frames[0],
                "last_frame": t.frames[-1],
                "frames": len(t.frames),
                "frames_fitted": len(fitted),
                "fitted_as": t.mode,
                "mean_reprojection_px": round(float(np.mean(px)), 2) if px else None,
            }
        )
        if not fitted:
            continue
        path = motion_path(folder, t.id, t.per_person)
        keys = [k for k in BODY_PARAMS if all(k in a for _, _, a in fitted)]
        write_npz(
            path,
            **{k: np.stack([a[k] for _, _, a in fitted]) for k in keys},
            frame_index=np.array([i for i, _, _ in fitted], np.int64),
            frame_names=np.array([n for _, n, _ in fitted], dtype=str),
            fps=np.float32(fps),
            person_id=np.int32(t.id),
            reprojection_px=np.array([a["reprojection_px"] for _, _, a in fitted], np.float32),
        )
        written.add(path.name)
    for old in folder.glob(f"{MOTION}*.npz"):
        if old.name not in written:
            old.unlink()
    write_text(folder / "tracks.json", json.dumps({"fps": fps, "tracks": rows}, indent=1) + "\n")


def _read(path: Path) -> dict[str, np.ndarray] | None:
    """A frame's saved arrays; None when it is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in (*BODY_PARAMS, "reprojection_px") if k in data.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile):
        return None
