"""Build the pose-prior training set from mocap: `python -m prior.data.build --mocap DIR --out DIR`.

Reads every .bvh, .amc (+ .asf) and AMASS .npz under --mocap, in folders or in .tar/.tar.gz/
.tar.xz archives (extracted one at a time to a temporary folder), retargets them to SMPL-X
body poses (`prior.data.load_motion`), and per clip: drops inserted first frames (a T-pose
glued before the take, `inserted_frames`), subsamples to --fps, drops glitch frames
(`plausible_frames`) and long static stretches (held T-poses, idling: `static_frames`), then
near-duplicate poses (consecutive kept frames whose joints all differ by less than
--min-change-deg). Clips are split by actor (`prior.data.sources.actor_of`), never by frame;
each actor keeps at most --max-actor-poses poses and each archive --max-dataset-poses (seeded
uniform subsets of their kept poses, `balance`: one performer's hours of walking do not
outweigh everyone else), and the training poses get left-right mirrored copies. Writes,
atomically:

    train.npz, val.npz   body_pose (N, 21, 3) float32 axis-angle, root_orient (N, 3) float32,
                         clip (N,) int32 index into clips (C,) str, frame (N,) int32 source
                         frame index (0-based; the manifest's clips give each file's own number
                         of its first frame), mirrored (N,) bool, actor (N,) int32 index into
                         actors (A,) str
    manifest.json        settings, split, per-actor and per-dataset counts, licences and
                         attributions, retarget check, skips

An actor is named as in `actor_of` ("cmu/16", "hdm05_asfamc/bk", "snu/woody2", ...); validation
actors may also be given as "<dataset>/<folder>" (the v1 subject names). Files that fail to
read are reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from body.rotations import axis_angle_to_matrix
from body.skeleton import BODY_JOINT_NAMES, HINGE_FLEXION_AXES
from configs.files import write_npz, write_text
from prior.data.load import MOTION_SUFFIXES, load_motion
from prior.data.mirror import mirror_body_pose
from prior.data.motion import Motion, MotionFormatError
from prior.data.retarget import bone_direction_errors
from prior.data.sources import actor_of, licence_for

DATASET_FORMAT = "bodyfit pose-prior dataset v3"  # v3: ReActIdle read (its skeleton map)
# Rotation limits (degrees) beyond which a frame is a capture glitch, not a pose (seen in
# the shared data: ankles turned 160-180 deg, whole clips with the head turned backwards).
# Hips, shoulders and wrists (which carry the ASF forearm twist) are not limited.
PLAUSIBLE_MAX_DEG: dict[str, float] = {
    name: 100.0
    for name in ("spine1", "spine2", "spine3", "neck", "head", "left_collar", "right_collar",
                 "left_ankle", "right_ankle", "left_foot", "right_foot")
}  # fmt: skip
# Knees and elbows (flexion axes: body.skeleton.HINGE_FLEXION_AXES): the largest hyperextension
# (degrees). A glitch flexion past 180 deg (HDM05 knees at 208) reads as hyperextension.
MAX_HYPEREXTENSION_DEG = 30.0
# Inserted first frames: CMU's BVH conversions glue a T-pose before the take (MotionBuilder-
# style: one frame, then a jump of ~100 deg; Daz-friendly: a blend into the take over ~4
# frames at 120 fps, 15-45 deg per frame). Leading frames are dropped while some joint turns by
# more than INSERTED_JUMP_DEG to the next frame and by more than INSERTED_JUMP_RATIO times the
# clip's median frame-to-frame change (the largest joint's).
INSERTED_JUMP_DEG = 10.0
INSERTED_JUMP_RATIO = 4.0
# A static stretch: at least STATIC_SECONDS in which no joint turns by more than STATIC_DEG
# from the stretch's first frame (held calibration T-poses, idling).
STATIC_SECONDS = 1.0
STATIC_DEG = 5.0
# Source balancing: the most poses (after de-duplication, before mirroring) one actor keeps, and
# one archive (dataset). 8,000 poses is 5-10 minutes of varied motion at 30 fps: SNU woody2's
# 114,000 (100 minutes of walking, pushes, boxing), SNU tennis, CMU 69, CMU 01 and the CMU salsa
# dancers are capped; every other CMU and HDM05 subject is below it. The archive cap keeps the
# SNU basketball sessions (4 performers, 134,000 poses) to 20,000.
DEFAULT_MAX_ACTOR_POSES = 8000
DEFAULT_MAX_DATASET_POSES = 20000

# Held-out actors: HDM05 bk and the CMU Indian-dance subject (the v1 validation set, so earlier
# numbers stay comparable), the FAIR actor (everyday gestures: waving, jumping, walking, dab;
# z-up 27-joint skeleton) and CMU subject 69 (walking and turning, retargeted by SNU to its
# 22-joint skeleton). None of them appears in another archive.
DEFAULT_VAL_SUBJECTS: tuple[str, ...] = ("hdm05_asfamc/bk", "cmu_bvh/indian", "fair/fair1", "cmu/69")
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2")
_LICENCE_FILES = ("LICENSE-or-SOURCE.txt",)


def subsample(motion: Motion, fps: float) -> tuple[Motion, np.ndarray]:
    """Frames nearest to a `fps` grid (all frames when the source is slower) and their indices."""
    step = motion.fps / fps
    if step <= 1:
        return motion, np.arange(motion.num_frames)
    idx = np.unique(np.round(np.arange(0, motion.num_frames - 0.5, step)).astype(int))
    sub = motion.select(idx)
    sub.fps = motion.fps / step
    return sub, idx


def plausible_frames(body_pose: np.ndarray) -> np.ndarray:
    """(T,) bool: frames within PLAUSIBLE_MAX_DEG whose knees and elbows do not bend backwards
    by more than MAX_HYPEREXTENSION_DEG."""
    angles = np.degrees(np.linalg.norm(body_pose, axis=-1))
    limits = np.full(body_pose.shape[-2], np.inf)
    for name, limit in PLAUSIBLE_MAX_DEG.items():
        limits[BODY_JOINT_NAMES.index(name) - 1] = limit
    ok = (angles <= limits).all(axis=-1)
    for name, axis in HINGE_FLEXION_AXES.items():
        flexion = body_pose[:, BODY_JOINT_NAMES.index(name) - 1] @ np.asarray(axis)
        ok &= np.degrees(flexion) >= -MAX_HYPEREXTENSION_DEG
    return ok


def _rotations(body_pose: np.ndarray) -> np.ndarray:
    return axis_angle_to_matrix(torch.as_tensor(body_pose, dtype=torch.float64)).numpy()


def _joint_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Degrees between rotation matrices a and b (..., J, 3, 3), per joint."""
    cos = (np.einsum("...jab,...jab->...j", a, b) - 1.0) / 2.0  # trace(a^T b)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def inserted_frames(body_pose: np.ndarray) -> int:
    """How many leading frames are inserted ones: those from which some joint jumps to the next
    frame by more than INSERTED_JUMP_DEG and by more than INSERTED_JUMP_RATIO times the clip's
    median frame-to-frame change."""
    if len(body_pose) < 3:
        return 0
    rot = _rotations(body_pose)
    step = _joint_angles(rot[1:], rot[:-1]).max(axis=-1)  # (T-1,) largest joint change per frame
    typical = float(np.median(step))
    lead = 0
    while lead < len(step) - 1 and step[lead] > max(INSERTED_JUMP_DEG, INSERTED_JUMP_RATIO * typical):
        lead += 1
    return lead


def static_frames(
    body_pose: np.ndarray, fps: float, seconds: float = STATIC_SECONDS, max_deg: float = STATIC_DEG
) -> np.ndarray:
    """(T,) bool: frames inside a stretch of at least `seconds` in which no joint turns by more
    than `max_deg` from the stretch's first frame (held T-poses, idling)."""
    num = len(body_pose)
    window = max(2, int(round(seconds * fps)))
    static = np.zeros(num, dtype=bool)
    if num < window or seconds <= 0:
        return static
    rot = _rotations(body_pose)
    still = np.ones(num - window + 1, dtype=bool)  # window starting at i is still
    for k in range(1, window):
        still &= _joint_angles(rot[k : num - window + 1 + k], rot[: num - window + 1]).max(axis=-1) <= max_deg
    for i in np.flatnonzero(still):
        static[i : i + window] = True
    return static


def drop_near_duplicates(body_pose: np.ndarray, min_change_deg: float) -> np.ndarray:
    """Indices of frames kept when each must differ from the last kept one by at least
    `min_change_deg` (geodesic angle) at some joint; the first frame is always kept."""
    if len(body_pose) == 0 or min_change_deg <= 0:
        return np.arange(len(body_pose))
    rot = _rotations(body_pose)
    min_cos = np.cos(np.radians(min_change_deg))
    keep, last = [0], rot[0]
    for i in range(1, len(rot)):
        cos = (np.einsum("jab,jab->j", last, rot[i]) - 1.0) / 2.0  # trace(last^T R) per joint
        if cos.min() < min_cos:
            keep.append(i)
            last = rot[i]
    return np.asarray(keep)


def balance(
    counts: dict[tuple[str, str], int], max_actor_poses: int | None, max_dataset_poses: int | None = None
) -> dict[tuple[str, str], int]:
    """Poses each (actor, dataset) group keeps. An actor with more than `max_actor_poses` poses
    has all its groups scaled down by the same factor; then a dataset with more than
    `max_dataset_poses` has its groups scaled down alike (None: no cap)."""
    quota = {g: float(n) for g, n in counts.items()}
    for level, cap in ((0, max_actor_poses), (1, max_dataset_poses)):
        if not cap:
            continue
        totals: dict[str, float] = {}
        for g, n in quota.items():
            totals[g[level]] = totals.get(g[level], 0.0) + n
        quota = {g: n * min(1.0, cap / totals[g[level]]) if totals[g[level]] else n for g, n in quota.items()}
    return {g: min(counts[g], int(np.floor(n + 1e-9))) for g, n in quota.items()}


def _subset(group: tuple[str, str], total: int, keep: int) -> np.ndarray:
    """A seeded (by the group's names) uniform subset of `keep` of `total` indices, in order."""
    if keep >= total:
        return np.arange(total)
    rng = np.random.default_rng(zlib.crc32("/".join(group).encode()))
    return np.sort(rng.choice(total, size=keep, replace=False))


@dataclass
class _Clip:
    name: str
    dataset: str
    actor: str
    subject: str  # v1 name: <dataset>/<folder>
    motion: Motion  # kept frames
    frames: np.ndarray  # their source frame indices


@dataclass
class _Split:
    body_pose: list[np.ndarray] = field(default_factory=list)
    root_orient: list[np.ndarray] = field(default_factory=list)
    clip: list[np.ndarray] = field(default_factory=list)
    frame: list[np.ndarray] = field(default_factory=list)
    mirrored: list[np.ndarray] = field(default_factory=list)
    actor: list[np.ndarray] = field(default_factory=list)

    def add(self, motion: Motion, clip: int, frames: np.ndarray, mirrored: bool, actor: int) -> None:
        pose = mirror_body_pose(motion.body_pose) if mirrored else motion.body_pose
        self.body_pose.append(pose.astype(np.float32))
        self.root_orient.append(motion.root_orient.astype(np.float32))
        self.clip.append(np.full(len(frames), clip, dtype=np.int32))
        self.frame.append(frames.astype(np.int32))
        self.mirrored.append(np.full(len(frames), mirrored))
        self.actor.append(np.full(len(frames), actor, dtype=np.int32))

    def arrays(self, clips: list[str], actors: list[str]) -> dict[str, np.ndarray]:
        def cat(parts: list[np.ndarray], shape: tuple[int, ...], dtype: type) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros((0, *shape), dtype=dtype)

        return {
            "body_pose": cat(self.body_pose, (21, 3), np.float32),
            "root_orient": cat(self.root_orient, (3,), np.float32),
            "clip": cat(self.clip, (), np.int32),
            "frame": cat(self.frame, (), np.int32),
            "mirrored": cat(self.mirrored, (), bool),
            "clips": np.array(clips, dtype=str),
            "actor": cat(self.actor, (), np.int32),
            "actors": np.array(actors, dtype=str),
        }


def _is_archive(path: Path) -> bool:
    return path.is_file() and any(path.name.lower().endswith(s) for s in _ARCHIVE_SUFFIXES)


def _dataset_name(path: Path) -> str:
    name = path.name
    for suffix in sorted(_ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


@contextmanager
def _opened(source: Path) -> Iterator[Path]:
    """A folder holding `source`'s files: the folder itself, or an archive extracted to a temp dir."""
    if not _is_archive(source):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="mocap_") as tmp:
        with tarfile.open(source) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp)


def _motion_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MOTION_SUFFIXES)


def _licence_file(folder: Path) -> str | None:
    """Text of the source's LICENSE-or-SOURCE.txt (at its top or one folder down), if any."""
    for name in _LICENCE_FILES:
        for path in sorted(folder.glob(name)) + sorted(folder.glob(f"*/{name}")):
            return path.read_text(encoding="utf-8", errors="replace").strip()
    return None


def _sources(mocap: Path) -> list[tuple[Path, str, bool]]:
    """(folder or archive, dataset name, loose files only) for each dataset under `mocap`."""
    if _is_archive(mocap):
        return [(mocap, _dataset_name(mocap), False)]
    entries = sorted(mocap.iterdir())
    sources = [(p, _dataset_name(p), False) for p in entries if p.is_dir() or _is_archive(p)]
    if any(p.is_file() and p.suffix.lower() in MOTION_SUFFIXES for p in entries):
        sources.append((mocap, mocap.name, True))  # loose files directly under --mocap
    return sources


def _within_dataset(rel: str, dataset: str) -> str:
    """A file's path inside its dataset: archives hold one folder named like the dataset."""
    parts = Path(rel).parts
    return str(Path(*parts[1:])) if len(parts) > 1 and parts[0] == dataset else rel


@dataclass(frozen=True)
class MotionFile:
    """One motion file of a dataset under --mocap, named as the dataset builders record it."""

    path: Path
    name: str  # the clip's name: the source's name / its path inside (loose files: the path)
    dataset: str
    actor: str  # `actor_of`


@dataclass
class OpenedDataset:
    """A dataset under --mocap (an archive is extracted while the dataset is being read)."""

    source: Path
    name: str
    folder: Path
    files: list[MotionFile]
    skipped: list[dict[str, str]]  # shared by the datasets of one build: {"file", "error"} rows

    def read(self, file: MotionFile) -> Motion | None:
        """The file's motion, or None after recording in `skipped` why it cannot be read."""
        try:
            return load_motion(file.path)
        except (MotionFormatError, FileNotFoundError) as err:
            error = str(err).replace(str(self.folder), self.source.name)
            self.skipped.append({"file": file.name, "error": error})
            tqdm.write(f"skipped {file.name}: {error}", file=sys.stderr)
            return None


def open_datasets(mocap: Path, skipped: list[dict[str, str]]) -> Iterator[OpenedDataset]:
    """Each dataset under `mocap` in turn, with its motion files; unreadable ones go to `skipped`."""
    for source, dataset, loose in _sources(mocap):
        with _opened(source) as folder:
            files = []
            for path in _motion_files(folder):
                if loose and path.parent != folder:
                    continue
                rel = str(path.relative_to(folder))
                name = rel if loose else f"{source.name}/{rel}"
                files.append(MotionFile(path, name, dataset, actor_of(dataset, _within_dataset(rel, dataset))))
            yield OpenedDataset(source, dataset, folder, files, skipped)


@dataclass(frozen=True)
class Cleaning:
    """How `build_dataset` cleans a clip: the frame rate, the smallest change kept, whether
    glitch frames go, and the shortest static stretch dropped (0: keep them)."""

    fps: float = 30.0
    min_change_deg: float = 5.0
    drop_implausible: bool = True
    static_seconds: float = STATIC_SECONDS

    def settings(self) -> dict:
        """The manifest's record of these settings and the thresholds behind them."""
        return {
            "fps": self.fps,
            "min_change_deg": self.min_change_deg,
            "drop_implausible": {"max_deg": PLAUSIBLE_MAX_DEG, "max_hyperextension_deg": MAX_HYPEREXTENSION_DEG}
            if self.drop_implausible
            else None,
            "drop_inserted": {"jump_deg": INSERTED_JUMP_DEG, "jump_ratio": INSERTED_JUMP_RATIO},
            "drop_static": {"seconds": self.static_seconds, "max_deg": STATIC_DEG} if self.static_seconds > 0 else None,
        }


@dataclass(frozen=True)
class _Cleaned:
    lead: int  # inserted leading frames dropped
    plausible: np.ndarray  # (T,) per subsampled frame
    static: np.ndarray  # (T,) per subsampled frame
    motion: Motion  # the frames kept
    frames: np.ndarray  # their source frame indices


def clean_clip(motion: Motion, cleaning: Cleaning) -> _Cleaned:
    """Drop inserted leading frames, subsample to `cleaning.fps`, drop glitch and static frames,
    then near-duplicates."""
    lead = inserted_frames(motion.body_pose)
    sub, sub_idx = subsample(motion.select(slice(lead, None)), cleaning.fps)
    sub_idx = sub_idx + lead
    ok = plausible_frames(sub.body_pose) if cleaning.drop_implausible else np.ones(sub.num_frames, bool)
    static = static_frames(sub.body_pose, sub.fps, cleaning.static_seconds)
    good = ok & ~static
    sub, sub_idx = sub.select(np.flatnonzero(good)), sub_idx[good]
    keep = drop_near_duplicates(sub.body_pose, cleaning.min_change_deg)
    return _Cleaned(lead, ok, static, sub.select(keep), sub_idx[keep])


@dataclass
class _Gathered:
    """The cleaned clips of every source, with the manifest's per-clip and per-dataset records."""

    clips: list[_Clip] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    datasets: dict[str, dict] = field(default_factory=dict)
    errors: dict[str, list[np.ndarray]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def add(self, clip: _Clip, motion: Motion, cleaned: _Cleaned) -> None:
        """Record a clip read as `motion` and cleaned to `cleaned`."""
        self.clips.append(clip)
        kept, info = cleaned.motion, self.datasets[clip.dataset]
        if kept.joints is not None and kept.num_frames:
            self.errors.setdefault(clip.dataset, []).append(bone_direction_errors(kept)[0].ravel())
        info["formats"][motion.source] = info["formats"].get(motion.source, 0) + 1
        info["skeletons"][motion.skeleton] = info["skeletons"].get(motion.skeleton, 0) + 1
        info["clips"] += 1
        info["frames_source"] += motion.num_frames
        info["seconds"] = round(info["seconds"] + motion.num_frames / motion.fps, 2)
        info["frames_inserted"] += cleaned.lead
        info["frames_subsampled"] += len(cleaned.plausible)
        info["frames_implausible"] += int((~cleaned.plausible).sum())
        info["frames_static"] += int((cleaned.plausible & cleaned.static).sum())
        info["frames_kept"] += kept.num_frames
        self.rows.append(
            {"clip": clip.name, "actor": clip.actor, "skeleton": motion.skeleton, "fps": motion.fps,
             "first_frame": motion.first_frame, "frames_source": motion.num_frames, "frames_inserted": cleaned.lead,
             "frames_kept": kept.num_frames}
        )  # fmt: skip


def _dataset_record(source: Path, dataset: str, folder: Path) -> dict:
    return {"source": source.name, **licence_for(dataset), "licence_file": _licence_file(folder), "formats": {},
            "skeletons": {}, "clips": 0, "clips_skipped": 0, "frames_source": 0, "seconds": 0.0,
            "frames_inserted": 0, "frames_subsampled": 0, "frames_implausible": 0, "frames_static": 0,
            "frames_kept": 0, "poses": 0, "actors": {}}  # fmt: skip


def gather_clips(mocap: Path, cleaning: Cleaning, progress: bool = True) -> _Gathered:
    """Read and clean every motion file of every dataset under `mocap` (unreadable ones are skipped)."""
    gathered = _Gathered()
    for opened in open_datasets(mocap, gathered.skipped):
        info = gathered.datasets.setdefault(opened.name, _dataset_record(opened.source, opened.name, opened.folder))
        for file in tqdm(opened.files, desc=opened.name, unit="file", disable=not progress):
            motion = opened.read(file)
            if motion is None:
                info["clips_skipped"] += 1
                continue
            cleaned = clean_clip(motion, cleaning)
            clip = _Clip(
                file.name, file.dataset, file.actor, f"{file.dataset}/{motion.subject}", cleaned.motion, cleaned.frames
            )
            gathered.add(clip, motion, cleaned)
    return gathered


def split_by_actor(
    gathered: _Gathered,
    val_actors: set[str],
    mirror: bool,
    max_actor_poses: int | None,
    max_dataset_poses: int | None,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict]]:
    """Balance the clips' poses (`balance`) and put each actor in one split, mirroring the training
    poses; returns each split's arrays and a record per actor (rows of `gathered` are updated)."""
    clips, datasets = gathered.clips, gathered.datasets
    actor_names = sorted({c.actor for c in clips})
    per_group: dict[tuple[str, str], int] = {}
    for c in clips:
        per_group[(c.actor, c.dataset)] = per_group.get((c.actor, c.dataset), 0) + c.motion.num_frames
    quota = balance(per_group, max_actor_poses, max_dataset_poses)
    chosen = {g: _subset(g, per_group[g], quota[g]) for g in per_group}
    splits = {"train": _Split(), "val": _Split()}
    offsets = dict.fromkeys(per_group, 0)
    actors: dict[str, dict] = {}
    for index, c in enumerate(clips):
        split = "val" if c.actor in val_actors else "train"
        n, group = c.motion.num_frames, (c.actor, c.dataset)
        picked = chosen[group]
        local = picked[(picked >= offsets[group]) & (picked < offsets[group] + n)] - offsets[group]
        offsets[group] += n
        kept, frames = c.motion.select(local), c.frames[local]
        a = actor_names.index(c.actor)
        splits[split].add(kept, index, frames, mirrored=False, actor=a)
        if mirror and split == "train":
            splits[split].add(kept, index, frames, mirrored=True, actor=a)
        row = gathered.rows[index]
        row.update(split=split, poses=int(len(local)))
        datasets[c.dataset]["poses"] += int(len(local))
        datasets[c.dataset]["actors"][c.actor] = split
        record = actors.setdefault(
            c.actor, {"split": split, "datasets": [], "clips": 0, "seconds": 0.0, "frames_kept": 0, "poses": 0}
        )
        if c.dataset not in record["datasets"]:
            record["datasets"].append(c.dataset)
        record["clips"] += 1
        record["seconds"] = round(record["seconds"] + row["frames_source"] / row["fps"], 2)
        record["frames_kept"] += n
        record["poses"] += int(len(local))
    for record in actors.values():
        record["capped"] = record["poses"] < record["frames_kept"]
    clip_names = [c.name for c in clips]
    return {name: split.arrays(clip_names, actor_names) for name, split in splits.items()}, actors


def _balance_settings(max_actor_poses: int | None, max_dataset_poses: int | None, actors: dict[str, dict]) -> dict:
    return {
        "rule": "after de-duplication, before mirroring, in both splits: an actor with more than "
        "max_actor_poses poses keeps that many, then an archive with more than max_dataset_poses keeps that "
        "many (its actors scaled down alike); the poses kept are a uniform random subset seeded by the "
        "actor's and archive's names",
        "max_actor_poses": max_actor_poses,
        "max_dataset_poses": max_dataset_poses,
        "capped_actors": sorted(a for a, r in actors.items() if r["capped"]),
    }


def _split_record(requested: set[str], found: set[str], actors: dict[str, dict]) -> dict:
    return {
        "rule": "by actor (prior.data.sources.actor_of; a CMU subject has one name in every archive), never by frame",
        "val_subjects_requested": sorted(requested),
        "val_subjects_missing": sorted(requested - found),
        "train_subjects": sorted(a for a, r in actors.items() if r["split"] == "train"),
        "val_subjects": sorted(a for a, r in actors.items() if r["split"] == "val"),
    }


def _retarget_check(errors: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
    """Median and 95th percentile of the bone direction errors (degrees) per dataset."""
    return {
        name: {
            "median": float(f"{np.median(np.concatenate(e)):.3g}"),
            "p95": float(f"{np.percentile(np.concatenate(e), 95):.3g}"),
        }
        for name, e in errors.items()
    }


def build_dataset(
    mocap: str | Path,
    out: str | Path,
    fps: float = 30.0,
    min_change_deg: float = 5.0,
    mirror: bool = True,
    val_subjects: Sequence[str] = DEFAULT_VAL_SUBJECTS,
    drop_implausible: bool = True,
    progress: bool = True,
    max_actor_poses: int | None = DEFAULT_MAX_ACTOR_POSES,
    max_dataset_poses: int | None = DEFAULT_MAX_DATASET_POSES,
    static_seconds: float = STATIC_SECONDS,
) -> dict:
    """Build train.npz, val.npz and manifest.json in `out` (see the module docstring).

    val_subjects: held-out actors (`actor_of` names, or v1 "<dataset>/<folder>" subjects: the
    whole actor goes to validation). max_actor_poses / max_dataset_poses: per-actor and
    per-archive caps (`balance`; None: no cap), applied to both splits. static_seconds:
    shortest static stretch dropped (0: keep them).
    """
    mocap, out = Path(mocap), Path(out)
    if not mocap.exists():
        raise FileNotFoundError(f"mocap folder or archive {mocap} does not exist")
    start = time.time()
    cleaning = Cleaning(fps, min_change_deg, drop_implausible, static_seconds)
    gathered = gather_clips(mocap, cleaning, progress)
    # Split by actor: an actor is held out when named, or when one of its clips' v1 subjects is.
    requested = set(val_subjects)
    val_actors = {c.actor for c in gathered.clips if c.actor in requested or c.subject in requested}
    found = val_actors | {c.subject for c in gathered.clips if c.actor in val_actors}
    arrays, actors = split_by_actor(gathered, val_actors, mirror, max_actor_poses, max_dataset_poses)
    manifest = {
        "format": DATASET_FORMAT,
        "settings": {
            **cleaning.settings(),
            "mirror_train": mirror,
            "balance": _balance_settings(max_actor_poses, max_dataset_poses, actors),
        },
        "split": _split_record(requested, found, actors),
        "counts": {
            name: {"frames": int(len(a["body_pose"])), "mirrored": int(a["mirrored"].sum())}
            for name, a in arrays.items()
        },
        "actors": dict(sorted(actors.items())),
        "datasets": gathered.datasets,
        "retarget_check_deg": _retarget_check(gathered.errors),
        "skipped": gathered.skipped,
        "clips": gathered.rows,
        "seconds_to_build": round(time.time() - start, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        write_npz(out / f"{name}.npz", **a)
    write_text(out / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prior.data.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mocap", required=True, type=Path, help="folder of mocap files/archives, or one archive")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--fps", type=float, default=30.0, help="target frame rate (default 30)")
    parser.add_argument(
        "--min-change-deg",
        type=float,
        default=5.0,
        help="drop a frame unless some joint moved this much since the last kept one (default 5)",
    )
    parser.add_argument("--no-mirror", action="store_true", help="do not add mirrored training poses")
    parser.add_argument("--keep-implausible", action="store_true",
                        help="keep glitch frames (see PLAUSIBLE_MAX_DEG, MAX_HYPEREXTENSION_DEG)")  # fmt: skip
    parser.add_argument("--val-subjects", default=",".join(DEFAULT_VAL_SUBJECTS),
                        help="comma-separated held-out actors (default %(default)s)")  # fmt: skip
    parser.add_argument("--max-actor-poses", type=int, default=DEFAULT_MAX_ACTOR_POSES,
                        help="most poses one actor keeps, 0 for no cap (default %(default)s)")  # fmt: skip
    parser.add_argument("--max-dataset-poses", type=int, default=DEFAULT_MAX_DATASET_POSES,
                        help="most poses one archive keeps, 0 for no cap (default %(default)s)")  # fmt: skip
    parser.add_argument("--static-seconds", type=float, default=STATIC_SECONDS,
                        help="drop static stretches this long or longer, 0: keep (default %(default)s)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.mocap.exists():
        parser.error(f"--mocap {args.mocap} does not exist")
    manifest = build_dataset(
        args.mocap,
        args.out,
        fps=args.fps,
        min_change_deg=args.min_change_deg,
        mirror=not args.no_mirror,
        val_subjects=[s for s in args.val_subjects.split(",") if s],
        drop_implausible=not args.keep_implausible,
        max_actor_poses=args.max_actor_poses or None,
        max_dataset_poses=args.max_dataset_poses or None,
        static_seconds=args.static_seconds,
    )
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v['frames']} poses" for k, v in manifest["counts"].items()))
    for name, info in manifest["datasets"].items():
        check = manifest["retarget_check_deg"].get(name)
        err = f", bone direction error median {check['median']} p95 {check['p95']} deg" if check else ""
        print(
            f"  {name}: {info['clips']} clips ({info['clips_skipped']} skipped), {info['frames_source']} frames -> "
            f"{info['frames_subsampled']} at {args.fps:g} fps -> {info['frames_kept']} kept "
            f"({info['frames_implausible']} implausible, {info['frames_static']} static dropped) -> "
            f"{info['poses']} after balancing{err}"
        )
    capped = manifest["settings"]["balance"]["capped_actors"]
    if capped:
        print(f"  balancing capped: {', '.join(capped)}")
    if manifest["skipped"]:
        print(f"  skipped {len(manifest['skipped'])} file(s), see manifest.json")
    if manifest["split"]["val_subjects_missing"]:
        print(f"  warning: validation actors not found: {manifest['split']['val_subjects_missing']}")
    print(f"  {manifest['seconds_to_build']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
