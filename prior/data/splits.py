"""The pose dataset of training and evaluation: built once by `prior.data.build`, then cached.

`data` config keys: `dataset` (a folder holding train.npz, val.npz and manifest.json, as
`python -m prior.data.build` writes), or `mocap` + `cache_dir`, where a dataset with the
requested `fps`, `min_change_deg`, `mirror`, `val_subjects` (held-out actors), `max_actor_poses`
and `max_dataset_poses` (balancing caps) is built on first use (the cache key also covers the
dataset format and the names, sizes and sha256 of `mocap`'s files).
An empty training or validation split is a ValueError.
`max_train_poses` / `max_val_poses` keep a seeded random subset (quick runs, tests).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from prior.data.build import (
    DATASET_FORMAT,
    DEFAULT_MAX_ACTOR_POSES,
    DEFAULT_MAX_DATASET_POSES,
    DEFAULT_VAL_SUBJECTS,
    build_dataset,
)


def dataset_folder(data: DictConfig) -> Path:
    """The dataset folder to read: `data.dataset`, or a cached build from `data.mocap`."""
    if data.dataset:
        folder = Path(data.dataset)
        if not (folder / "train.npz").is_file():
            raise FileNotFoundError(f"{folder} holds no train.npz: build it with python -m prior.data.build")
        return folder
    mocap = Path(data.mocap).resolve()
    if not mocap.exists():
        raise FileNotFoundError(f"mocap data {mocap} not found: set data.mocap or data.dataset")
    val_subjects = sorted(data.val_subjects or DEFAULT_VAL_SUBJECTS)
    caps = [
        data.get("max_actor_poses", DEFAULT_MAX_ACTOR_POSES),
        data.get("max_dataset_poses", DEFAULT_MAX_DATASET_POSES),
    ]
    settings = {"fps": float(data.fps), "min_change_deg": float(data.min_change_deg), "mirror_train": bool(data.mirror)}
    key_parts = [settings, val_subjects, mocap_fingerprint(mocap), DATASET_FORMAT, caps]
    key = hashlib.sha1(json.dumps(key_parts).encode()).hexdigest()[:10]
    folder = Path(data.cache_dir) / f"fps{data.fps:g}_{key}"
    if not (folder / "manifest.json").is_file():
        build_dataset(
            mocap,
            folder,
            fps=settings["fps"],
            min_change_deg=settings["min_change_deg"],
            mirror=settings["mirror_train"],
            val_subjects=val_subjects,
            max_actor_poses=caps[0],
            max_dataset_poses=caps[1],
        )
    return folder


def mocap_fingerprint(mocap: Path) -> list[tuple[str, int, str]]:
    """(name, size, sha256) of every file of a mocap folder (or of the archive itself), sorted: changes when
    an input file is added, removed or rewritten, not when the data is copied or mounted anew (new mtimes)."""
    files = sorted(p for p in mocap.rglob("*") if p.is_file()) if mocap.is_dir() else [mocap]
    return [(str(p.relative_to(mocap)) if mocap.is_dir() else p.name, p.stat().st_size, _sha256(p)) for p in files]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _poses(path: Path, limit: int | None, seed: int) -> torch.Tensor:
    with np.load(path, allow_pickle=False) as f:
        poses = torch.from_numpy(f["body_pose"].astype(np.float32))
    if not len(poses):
        split = {"train": "training", "val": "validation"}[path.stem]
        raise ValueError(
            f"{path.parent}: {split} split is empty; set data.val_subjects to subjects listed in manifest.json"
        )
    if limit is not None and limit < len(poses):
        poses = poses[torch.randperm(len(poses), generator=torch.Generator().manual_seed(seed))[:limit]]
    return poses


def load_splits(data: DictConfig, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Training and validation body poses (N, 21, 3) and a summary (sizes, subjects, source)."""
    folder = dataset_folder(data)
    train = _poses(folder / "train.npz", data.max_train_poses, seed)
    val = _poses(folder / "val.npz", data.max_val_poses, seed)
    manifest = json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").is_file() else {}
    split = manifest.get("split", {})
    info = {
        "dataset": str(folder),
        "settings": manifest.get("settings", {}),
        "train_poses": len(train),
        "val_poses": len(val),
        "train_subjects": split.get("train_subjects", []),
        "val_subjects": split.get("val_subjects", []),
    }
    return train, val, info
