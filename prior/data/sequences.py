"""Mocap sequences for the temporal lifter: `python -m prior.data.sequences --mocap DIR --out DIR`.

Unlike the pose-prior dataset (`prior.data.build`), which keeps only poses and drops near-
duplicates and idling, this keeps every frame of a clip in order, with its real root trajectory:
per clip, inserted first frames are dropped (`inserted_frames`), the clip is subsampled to --fps
(`subsample`; slower sources keep their rate) and cut at glitch frames (`plausible_frames`) into
segments of at least --min-frames. Clips are split by actor (`actor_of`; held-out actors:
`DEFAULT_VAL_SUBJECTS`), and each actor keeps at most --max-actor-seconds and each archive
--max-dataset-seconds (`balance`; a clip keeps one seeded random stretch of its share). Writes:

    train.npz, val.npz   body_pose (N, 21, 3), root_orient (N, 3) axis-angle and transl (N, 3)
                         metres (y up), float32; per segment: start (S,) and length (S,) into
                         the frames, fps (S,), actor (S,) index into actors (A,) str, clip (S,)
                         index into clips (C,) str
    manifest.json        settings, counts per split, actors, licences, skipped files
"""

from __future__ import annotations

import argparse
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from configs.files import write_npz, write_text
from prior.data.build import (
    DEFAULT_VAL_SUBJECTS,
    MotionFile,
    balance,
    inserted_frames,
    open_datasets,
    plausible_frames,
    subsample,
)
from prior.data.motion import Motion
from prior.data.sources import licence_for

SEQUENCES_FORMAT = "bodyfit mocap sequences v1"
DEFAULT_FPS = 30.0
DEFAULT_MIN_FRAMES = 32
DEFAULT_MAX_ACTOR_SECONDS = 900.0  # 15 minutes: SNU woody2's 100, CMU 69, SNU tennis are capped
DEFAULT_MAX_DATASET_SECONDS = 1800.0


@dataclass
class Sequences:
    """Frames of many segments, back to back (see the module docstring for the fields)."""

    body_pose: np.ndarray
    root_orient: np.ndarray
    transl: np.ndarray
    start: np.ndarray
    length: np.ndarray
    fps: np.ndarray
    actor: np.ndarray
    actors: np.ndarray
    clip: np.ndarray
    clips: np.ndarray

    @staticmethod
    def read(path: str | Path) -> "Sequences":
        """A split written by `build_sequences` (train.npz or val.npz)."""
        with np.load(path) as d:
            missing = [k for k in Sequences.__dataclass_fields__ if k not in d]
            if missing:
                raise ValueError(f"{path}: not a sequences split (lacks {', '.join(missing)})")
            return Sequences(**{k: d[k] for k in Sequences.__dataclass_fields__})

    @property
    def num_frames(self) -> int:
        return len(self.body_pose)


def segments(motion: Motion, fps: float, min_frames: int) -> list[Motion]:
    """A clip's usable stretches at about `fps`: inserted first frames dropped, cut at glitch frames,
    those shorter than `min_frames` left out."""
    lead = inserted_frames(motion.body_pose)
    sub, _ = subsample(motion.select(slice(lead, None)), fps)
    ok = np.concatenate([[False], plausible_frames(sub.body_pose), [False]])
    edges = np.flatnonzero(np.diff(ok.astype(np.int8)))
    return [sub.select(slice(a, b)) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_frames]


def _stretch(name: str, total: int, keep: int) -> slice:
    """A seeded (by the clip's name) random contiguous stretch of `keep` of `total` frames."""
    if keep >= total:
        return slice(0, total)
    first = int(np.random.default_rng(zlib.crc32(name.encode())).integers(0, total - keep + 1))
    return slice(first, first + keep)


def gather_segments(
    mocap: Path, fps: float, min_frames: int, progress: bool = True
) -> tuple[list[tuple[MotionFile, list[Motion]]], list[dict[str, str]], dict[str, dict[str, str]]]:
    """Each readable motion file under `mocap` with its `segments`, the files skipped, and the
    datasets' licences."""
    found: list[tuple[MotionFile, list[Motion]]] = []
    skipped: list[dict[str, str]] = []
    licences: dict[str, dict[str, str]] = {}
    for opened in open_datasets(mocap, skipped):
        licences[opened.name] = licence_for(opened.name)
        for file in tqdm(opened.files, desc=opened.name, unit="file", disable=not progress):
            motion = opened.read(file)
            if motion is not None:
                found.append((file, segments(motion, fps, min_frames)))
    return found, skipped, licences


def balanced_parts(
    found: list[tuple[MotionFile, list[Motion]]],
    val_actors: set[str],
    actors: list[str],
    quota_frames: tuple[int | None, int | None],
    min_frames: int,
) -> dict[str, list[tuple[int, Motion, int]]]:
    """(clip index, segment kept, actor index) rows per split: each actor's and archive's frames
    capped (`balance`, caps in frames) by keeping a seeded stretch of every segment."""
    per_group: dict[tuple[str, str], int] = {}
    for file, segs in found:
        group = (file.actor, file.dataset)
        per_group[group] = per_group.get(group, 0) + sum(s.num_frames for s in segs)
    quota = balance(per_group, *quota_frames)
    parts: dict[str, list[tuple[int, Motion, int]]] = {"train": [], "val": []}
    for index, (file, segs) in enumerate(found):
        group = (file.actor, file.dataset)
        share = quota[group] / per_group[group] if per_group[group] else 0.0
        split = "val" if file.actor in val_actors else "train"
        for k, seg in enumerate(segs):
            kept = seg.select(_stretch(f"{file.name}#{k}", seg.num_frames, int(round(seg.num_frames * share))))
            if kept.num_frames >= min_frames:
                parts[split].append((index, kept, actors.index(file.actor)))
    return parts


def write_split(path: Path, rows: list[tuple[int, Motion, int]], actors: list[str], clips: list[str]) -> dict:
    """Write one split's segments back to back (`Sequences`' fields); returns its counts."""
    lengths = np.array([m.num_frames for _, m, _ in rows], dtype=np.int64)
    cat = lambda key, shape: (  # noqa: E731
        np.concatenate([getattr(m, key) for _, m, _ in rows]).astype(np.float32) if rows else np.zeros((0, *shape))
    )
    write_npz(
        path,
        body_pose=cat("body_pose", (21, 3)),
        root_orient=cat("root_orient", (3,)),
        transl=cat("transl", (3,)),
        start=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if rows else lengths,
        length=lengths,
        fps=np.array([m.fps for _, m, _ in rows], dtype=np.float32),
        actor=np.array([a for *_, a in rows], dtype=np.int32),
        actors=np.array(actors, dtype=str),
        clip=np.array([c for c, *_ in rows], dtype=np.int32),
        clips=np.array(clips, dtype=str),
    )
    return {
        "segments": len(rows),
        "frames": int(lengths.sum()),
        "minutes": round(float(sum(m.num_frames / m.fps for _, m, _ in rows)) / 60, 1),
        "actors": sorted({actors[a] for *_, a in rows}),
    }


def build_sequences(
    mocap: str | Path,
    out: str | Path,
    fps: float = DEFAULT_FPS,
    val_subjects: Sequence[str] = DEFAULT_VAL_SUBJECTS,
    min_frames: int = DEFAULT_MIN_FRAMES,
    max_actor_seconds: float | None = DEFAULT_MAX_ACTOR_SECONDS,
    max_dataset_seconds: float | None = DEFAULT_MAX_DATASET_SECONDS,
    progress: bool = True,
) -> dict:
    """Write train.npz, val.npz and manifest.json to `out` (see the module docstring); returns the manifest."""
    mocap, out = Path(mocap), Path(out)
    if not mocap.exists():
        raise FileNotFoundError(f"mocap folder or archive {mocap} does not exist")
    found, skipped, licences = gather_segments(mocap, fps, min_frames, progress)
    val_actors = {file.actor for file, _ in found if file.actor in val_subjects}
    actors = sorted({file.actor for file, _ in found})
    caps = tuple(int(s * fps) if s else None for s in (max_actor_seconds, max_dataset_seconds))  # seconds at `fps`
    parts = balanced_parts(found, val_actors, actors, caps, min_frames)
    clips = [file.name for file, _ in found]
    out.mkdir(parents=True, exist_ok=True)
    counts = {split: write_split(out / f"{split}.npz", rows, actors, clips) for split, rows in parts.items()}
    manifest = {
        "format": SEQUENCES_FORMAT,
        "settings": {
            "fps": fps,
            "min_frames": min_frames,
            "val_subjects": sorted(val_subjects),
            "val_subjects_missing": sorted(set(val_subjects) - val_actors),
            "max_actor_seconds": max_actor_seconds,
            "max_dataset_seconds": max_dataset_seconds,
        },
        "counts": counts,
        "licences": licences,
        "skipped": skipped,
    }
    write_text(out / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prior.data.sequences", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mocap", required=True, type=Path, help="folder of mocap files/archives, or one archive")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS, help="target frame rate (default %(default)s)")
    parser.add_argument("--val-subjects", default=",".join(DEFAULT_VAL_SUBJECTS),
                        help="comma-separated held-out actors (default %(default)s)")  # fmt: skip
    parser.add_argument("--max-actor-seconds", type=float, default=DEFAULT_MAX_ACTOR_SECONDS,
                        help="most seconds one actor keeps, 0 for no cap (default %(default)s)")  # fmt: skip
    parser.add_argument("--max-dataset-seconds", type=float, default=DEFAULT_MAX_DATASET_SECONDS,
                        help="most seconds one archive keeps, 0 for no cap (default %(default)s)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.mocap.exists():
        parser.error(f"--mocap {args.mocap} does not exist")
    manifest = build_sequences(
        args.mocap,
        args.out,
        fps=args.fps,
        val_subjects=[s for s in args.val_subjects.split(",") if s],
        max_actor_seconds=args.max_actor_seconds or None,
        max_dataset_seconds=args.max_dataset_seconds or None,
    )
    for split, c in manifest["counts"].items():
        print(f"{split}: {c['segments']} segments, {c['frames']} frames, {c['minutes']} min, {len(c['actors'])} actors")
    if manifest["skipped"]:
        print(f"skipped {len(manifest['skipped'])} file(s), see manifest.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
