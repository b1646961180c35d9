"""Build the pose-prior training set from mocap: `python -m prior.data.build --mocap DIR --out DIR`.

Reads every .bvh, .amc (+ .asf) and AMASS .npz under --mocap, in folders or in .tar/.tar.gz/
.tar.xz archives (extracted one at a time to a temporary folder), retargets them to SMPL-X
body poses, subsamples to --fps, drops near-duplicate poses (consecutive kept frames whose
joints all differ by less than --min-change-deg), splits by subject (never by frame) and adds
left-right mirrored copies of the training poses. Glitch frames (see `plausible_frames`)
are dropped before de-duplication. Writes, atomically:

    train.npz, val.npz   body_pose (N, 21, 3) float32 axis-angle, root_orient (N, 3) float32,
                         clip (N,) int32 index into clips (C,) str, frame (N,) int32 source
                         frame index, mirrored (N,) bool
    manifest.json        settings, split, per-dataset counts, licences, retarget check, skips

A subject is "<dataset>/<folder>", the dataset being the archive's (or top folder's) name.
Files that fail to read are reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from body.io import write_npz, write_text
from body.rotations import axis_angle_to_matrix
from body.skeleton import BODY_JOINT_NAMES, HINGE_FLEXION_AXES
from prior.data.load import MOTION_SUFFIXES, load_motion
from prior.data.mirror import mirror_body_pose
from prior.data.motion import Motion, MotionFormatError
from prior.data.retarget import bone_direction_errors

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

# Held-out subjects: HDM05 actor bk and the CMU Indian-dance subject (~14% of kept poses).
DEFAULT_VAL_SUBJECTS: tuple[str, ...] = ("hdm05_asfamc/bk", "cmu_bvh/indian")
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2")
_CMU = (
    "CMU Graphics Lab Motion Capture Database: free for use in research and commercial projects worldwide",
    "Data from mocap.cs.cmu.edu, created with funding from NSF EIA-0196217.",
)
_HDM05 = (
    "CC BY-SA 3.0",
    "M. Müller, T. Röder, M. Clausen, B. Eberhardt, B. Krüger, A. Weber: "
    "Documentation Mocap Database HDM05, Universität Bonn, Tech. Rep. CG-2007-2, 2007.",
)
_AMASS = (
    "AMASS and its sub-datasets: see amass.is.tue.mpg.de (research licences)",
    "Mahmood et al., AMASS, ICCV 2019.",
)
LICENCES: tuple[tuple[str, tuple[str, str]], ...] = (("hdm05", _HDM05), ("cmu", _CMU), ("amass", _AMASS))


def licence_for(dataset: str) -> dict[str, str]:
    """Licence and attribution of a dataset, matched by name (unknown ones say so)."""
    for key, (licence, attribution) in LICENCES:
        if key in dataset.lower():
            return {"licence": licence, "attribution": attribution}
    return {"licence": "unknown: check the source's terms", "attribution": ""}


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


def drop_near_duplicates(body_pose: np.ndarray, min_change_deg: float) -> np.ndarray:
    """Indices of frames kept when each must differ from the last kept one by at least
    `min_change_deg` (geodesic angle) at some joint; the first frame is always kept."""
    if len(body_pose) == 0 or min_change_deg <= 0:
        return np.arange(len(body_pose))
    rot = axis_angle_to_matrix(torch.as_tensor(body_pose, dtype=torch.float64)).numpy()
    min_cos = np.cos(np.radians(min_change_deg))
    keep, last = [0], rot[0]
    for i in range(1, len(rot)):
        cos = (np.einsum("jab,jab->j", last, rot[i]) - 1.0) / 2.0  # trace(last^T R) per joint
        if cos.min() < min_cos:
            keep.append(i)
            last = rot[i]
    return np.asarray(keep)


@dataclass
class _Split:
    body_pose: list[np.ndarray] = field(default_factory=list)
    root_orient: list[np.ndarray] = field(default_factory=list)
    clip: list[np.ndarray] = field(default_factory=list)
    frame: list[np.ndarray] = field(default_factory=list)
    mirrored: list[np.ndarray] = field(default_factory=list)

    def add(self, motion: Motion, clip: int, frames: np.ndarray, mirrored: bool) -> None:
        pose = mirror_body_pose(motion.body_pose) if mirrored else motion.body_pose
        self.body_pose.append(pose.astype(np.float32))
        self.root_orient.append(motion.root_orient.astype(np.float32))
        self.clip.append(np.full(len(frames), clip, dtype=np.int32))
        self.frame.append(frames.astype(np.int32))
        self.mirrored.append(np.full(len(frames), mirrored))

    def arrays(self, clips: list[str]) -> dict[str, np.ndarray]:
        def cat(parts: list[np.ndarray], shape: tuple[int, ...], dtype: type) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros((0, *shape), dtype=dtype)

        return {
            "body_pose": cat(self.body_pose, (21, 3), np.float32),
            "root_orient": cat(self.root_orient, (3,), np.float32),
            "clip": cat(self.clip, (), np.int32),
            "frame": cat(self.frame, (), np.int32),
            "mirrored": cat(self.mirrored, (), bool),
            "clips": np.array(clips, dtype=str),
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


def _sources(mocap: Path) -> list[tuple[Path, str, bool]]:
    """(folder or archive, dataset name, loose files only) for each dataset under `mocap`."""
    if _is_archive(mocap):
        return [(mocap, _dataset_name(mocap), False)]
    entries = sorted(mocap.iterdir())
    sources = [(p, _dataset_name(p), False) for p in entries if p.is_dir() or _is_archive(p)]
    if any(p.is_file() and p.suffix.lower() in MOTION_SUFFIXES for p in entries):
        sources.append((mocap, mocap.name, True))  # loose files directly under --mocap
    return sources


def build_dataset(
    mocap: str | Path,
    out: str | Path,
    fps: float = 30.0,
    min_change_deg: float = 5.0,
    mirror: bool = True,
    val_subjects: Sequence[str] = DEFAULT_VAL_SUBJECTS,
    drop_implausible: bool = True,
    progress: bool = True,
) -> dict:
    """Build train.npz, val.npz and manifest.json in `out` (see the module docstring)."""
    mocap, out = Path(mocap), Path(out)
    if not mocap.exists():
        raise FileNotFoundError(f"mocap folder or archive {mocap} does not exist")
    start = time.time()
    splits = {"train": _Split(), "val": _Split()}
    clips: list[str] = []
    clip_rows: list[dict] = []
    datasets: dict[str, dict] = {}
    errors: dict[str, list[np.ndarray]] = {}
    skipped: list[dict[str, str]] = []
    val = set(val_subjects)

    for source, dataset, loose in _sources(mocap):
        with _opened(source) as folder:
            files = [f for f in _motion_files(folder) if not loose or f.parent == folder]
            for path in tqdm(files, desc=dataset, unit="file", disable=not progress):
                rel = str(path.relative_to(folder))
                clip_name = rel if loose else f"{source.name}/{rel}"
                try:
                    motion = load_motion(path)
                except (MotionFormatError, FileNotFoundError) as err:
                    skipped.append({"file": clip_name, "error": str(err).replace(str(folder), source.name)})
                    tqdm.write(f"skipped {clip_name}: {skipped[-1]['error']}", file=sys.stderr)
                    continue
                subject = f"{dataset}/{motion.subject}"
                split = "val" if subject in val else "train"
                sub, sub_idx = subsample(motion, fps)
                ok = plausible_frames(sub.body_pose) if drop_implausible else np.ones(sub.num_frames, bool)
                sub, sub_idx = sub.select(np.flatnonzero(ok)), sub_idx[ok]
                keep = drop_near_duplicates(sub.body_pose, min_change_deg)
                kept = sub.select(keep)
                frames = sub_idx[keep]
                clip = len(clips)
                clips.append(clip_name)
                splits[split].add(kept, clip, frames, mirrored=False)
                if mirror and split == "train":
                    splits[split].add(kept, clip, frames, mirrored=True)
                if kept.joints is not None:
                    errors.setdefault(dataset, []).append(bone_direction_errors(kept)[0].ravel())
                info = datasets.setdefault(
                    dataset,
                    {"source": source.name, **licence_for(dataset), "format": motion.source, "subjects": {},
                     "clips": 0, "frames_source": 0, "seconds": 0.0, "frames_subsampled": 0, "frames_implausible": 0,
                     "frames_kept": 0},
                )  # fmt: skip
                info["clips"] += 1
                info["frames_source"] += motion.num_frames
                info["seconds"] = round(info["seconds"] + motion.num_frames / motion.fps, 2)
                info["frames_subsampled"] += len(ok)
                info["frames_implausible"] += int((~ok).sum())
                info["frames_kept"] += kept.num_frames
                info["subjects"][subject] = split
                clip_rows.append(
                    {"clip": clip_name, "subject": subject, "split": split, "fps": motion.fps,
                     "frames_source": motion.num_frames, "frames_kept": kept.num_frames}
                )  # fmt: skip

    arrays = {name: split.arrays(clips) for name, split in splits.items()}
    subjects = {name: sorted({r["subject"] for r in clip_rows if r["split"] == name}) for name in splits}
    manifest = {
        "format": "bodyfit pose-prior dataset v1",
        "settings": {
            "fps": fps,
            "min_change_deg": min_change_deg,
            "mirror_train": mirror,
            "drop_implausible": {"max_deg": PLAUSIBLE_MAX_DEG, "max_hyperextension_deg": MAX_HYPEREXTENSION_DEG}
            if drop_implausible
            else None,
        },
        "split": {
            "rule": "by subject (<dataset>/<folder>), never by frame",
            "val_subjects_requested": sorted(val),
            "val_subjects_missing": sorted(val - set(subjects["val"])),
            **{f"{name}_subjects": s for name, s in subjects.items()},
        },
        "counts": {
            name: {"frames": int(len(a["body_pose"])), "mirrored": int(a["mirrored"].sum())}
            for name, a in arrays.items()
        },
        "datasets": datasets,
        "retarget_check_deg": {
            name: {
                "median": float(f"{np.median(np.concatenate(e)):.3g}"),
                "p95": float(f"{np.percentile(np.concatenate(e), 95):.3g}"),
            }
            for name, e in errors.items()
        },  # fmt: skip
        "skipped": skipped,
        "clips": clip_rows,
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
                        help="comma-separated held-out subjects, <dataset>/<folder> (default %(default)s)")  # fmt: skip
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
    )
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v['frames']} poses" for k, v in manifest["counts"].items()))
    for name, info in manifest["datasets"].items():
        check = manifest["retarget_check_deg"].get(name)
        err = f", bone direction error median {check['median']} p95 {check['p95']} deg" if check else ""
        print(
            f"  {name}: {info['clips']} clips, {info['frames_source']} frames -> {info['frames_subsampled']} at "
            f"{args.fps:g} fps -> {info['frames_kept']} kept ({info['frames_implausible']} implausible dropped){err}"
        )
    if manifest["skipped"]:
        print(f"  skipped {len(manifest['skipped'])} file(s), see manifest.json")
    if manifest["split"]["val_subjects_missing"]:
        print(f"  warning: validation subjects not found: {manifest['split']['val_subjects_missing']}")
    print(f"  {manifest['seconds_to_build']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
