"""Output keys and files, and the digest of the settings that shape a fit.

Outputs are keyed by the input's file name with its extension (`x.jpg` -> `x.jpg.npz`,
`x.jpg.obj`, `x.jpg.overlay.png`; a video's frames under its own folder:
`clip.avi/000012.npz`), so two inputs never share a key. A frame with one chosen person
writes under its key; a frame with several writes each person's npz and obj under
`KEY.person_<id>` (`person_key`) and one overlay `KEY.overlay.png` with every mesh.
"""

from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# Settings that do not change a fit: a rerun may change them and still resume.
RUN_ONLY_KEYS = ("device", "threads", "batch_size", "output", "ray")
PERSON_INFIX = ".person_"


def frame_paths(out_dir: Path, key: str) -> dict[str, Path]:
    """The npz, obj and overlay png of output `key`."""
    return {"npz": out_dir / f"{key}.npz", "obj": out_dir / f"{key}.obj", "png": out_dir / f"{key}.overlay.png"}


def person_key(key: str, person_id: int) -> str:
    """The output key of person `person_id` of a frame with several people: `KEY.person_<id>`."""
    return f"{key}{PERSON_INFIX}{person_id}"


def output_key(key: str, person_id: int, per_person: bool) -> str:
    """A person's output key in a frame: `person_key` where outputs are per person, else the frame's own."""
    return person_key(key, person_id) if per_person else key


def person_outputs(out_dir: Path, key: str) -> list[Path]:
    """The per-person files (`KEY.person_<id>.npz` and `.obj`) of a frame that are on disk."""
    path = out_dir / key
    found = path.parent.glob(f"{glob.escape(path.name)}{PERSON_INFIX}*")
    return sorted(f for f in found if f.suffix in (".npz", ".obj") and f.stem.rsplit("_", 1)[-1].isdigit())


def fit_settings(cfg: DictConfig) -> dict:
    """The resolved settings that shape a fit (all but RUN_ONLY_KEYS)."""
    return {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in RUN_ONLY_KEYS}


def config_digest(cfg: DictConfig) -> str:
    """A short digest of `fit_settings`, saved in every .npz: a frame counts as done only under the same one."""
    return hashlib.sha256(json.dumps(fit_settings(cfg), sort_keys=True).encode()).hexdigest()[:16]
