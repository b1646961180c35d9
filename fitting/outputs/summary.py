"""The run's record of what happened to every frame and person (summary.json, the closing report)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from configs.files import write_text


@dataclass
class Summary:
    """What happened to every frame and person of a run; entries are output keys (a frame's, or
    `KEY.person_<id>` for each person of a frame with several)."""

    fitted: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    reprojection_px: dict[str, float] = field(default_factory=dict)
    reprojection_rel: dict[str, float] = field(default_factory=dict)
    dropped_keypoints: dict[str, int] = field(default_factory=dict)  # detections far outside the image, ignored
    frame_of: dict[str, str] = field(default_factory=dict)  # person entry -> its frame's key
    tracks: dict[str, dict[str, int]] = field(default_factory=dict)  # video or sequence -> its track counts
    seconds: float = 0.0

    def people(self) -> dict:
        """People counts: fitted (this run), already done, skipped and failed ones, the frames with a
        fitted person, and the most people fitted in one frame."""
        done = [k for k in (*self.fitted, *self.already_done) if k in self.frame_of]
        per_frame: dict[str, int] = {}
        for k in done:
            per_frame[self.frame_of[k]] = per_frame.get(self.frame_of[k], 0) + 1
        return {
            "fitted": sum(k in self.frame_of for k in self.fitted),
            "already_done": sum(k in self.frame_of for k in self.already_done),
            "skipped": sum(k in self.frame_of for k in self.skipped),
            "failed": sum(k in self.frame_of for k in self.failed),
            "frames": len(per_frame),
            "most_in_a_frame": max(per_frame.values(), default=0),
        }

    def to_dict(self) -> dict:
        px = [v for v in self.reprojection_px.values() if np.isfinite(v)]
        rel = [v for v in self.reprojection_rel.values() if np.isfinite(v)]
        return {
            "counts": {
                "fitted": len(self.fitted),
                "already_done": len(self.already_done),
                "skipped": len(self.skipped),
                "failed": len(self.failed),
            },
            "people": self.people(),
            "tracks": self.tracks,
            "seconds": round(self.seconds, 2),
            "mean_reprojection_px": _rounded(np.mean(px), 2) if px else None,
            "mean_reprojection_of_height": _rounded(np.mean(rel), 4) if rel else None,
            "fitted": self.fitted,
            "already_done": self.already_done,
            "skipped": self.skipped,
            "failed": self.failed,
            "reprojection_px": {k: _rounded(v, 2) for k, v in self.reprojection_px.items()},
            "dropped_keypoints": self.dropped_keypoints,
        }

    def write(self, path: Path) -> None:
        write_text(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")

    def report(self) -> str:
        d = self.to_dict()
        c, people = d["counts"], d["people"]
        lines = [
            f"fitted {c['fitted']}, already done {c['already_done']}, skipped {c['skipped']}, "
            f"failed {c['failed']} in {d['seconds']:.1f} s"
        ]
        if people["most_in_a_frame"] > 1:
            lines.append(
                f"people: {people['fitted'] + people['already_done']} in {people['frames']} frames (up to "
                f"{people['most_in_a_frame']} in one), {people['skipped'] + people['failed']} not fitted"
            )
        for key, t in self.tracks.items():
            lines.append(
                f"{key}: {t['tracks']} track(s), {t['fitted']} fitted as sequences, short ones: "
                f"{t['stills']} as stills, {t['skipped']} skipped"
            )
        if d["mean_reprojection_px"] is not None:
            lines.append(
                f"mean reprojection error {d['mean_reprojection_px']:.1f} px "
                f"({100 * d['mean_reprojection_of_height']:.1f} % of person height)"
            )
        lines += [f"  skipped {k}: {v}" for k, v in self.skipped.items()]
        lines += [f"  FAILED {k}: {v}" for k, v in self.failed.items()]
        return "\n".join(lines)


def _rounded(value: float, digits: int) -> float | None:
    """A float for JSON: None for NaN or infinity (which JSON has no value for)."""
    return round(float(value), digits) if np.isfinite(value) else None


def error_text(e: Exception) -> str:
    """How an item's error is reported. Any error of one frame, batch or video (unreadable or truncated
    files, failed fits, rendering) fails that item only; KeyboardInterrupt is no Exception and stops the run."""
    return f"{type(e).__name__}: {e}"
