"""Save and load VPoser weights: the shipped default, official v2 .ckpt files, experiment folders.

Accepted inputs of `load`:
- None: the project's default checkpoint, `prior/checkpoints/vposer_default.pt`;
- a file: a plain state_dict (as `save_weights` writes), or a Lightning checkpoint
  ({'state_dict': ...}) whose model keys carry the `vp_model.` prefix (official
  VPoser v2 `.ckpt` files, and the ones `prior.vposer.train` writes);
- a folder: an experiment folder with `snapshots/*.ckpt` (the best one by the
  `val_loss=` in its name, else the newest) and optionally a `*.yaml` config
  holding `model_params.num_neurons` / `model_params.latentD` (V02_05 style).

Files are read with `torch.load(weights_only=True)`: no code is unpickled; a file that is
not a checkpoint (or holds pickled code) raises ValueError. Loading is strict: missing or
unexpected model keys raise `CheckpointKeyError` naming them.
Keys of the official trainer's body model (`bm_train.`) are not model weights and are
set aside.
"""

from __future__ import annotations

import pickle
import re
import shutil
import zipfile
from pathlib import Path
from typing import Sequence

import torch
from omegaconf import OmegaConf

from configs.files import atomic_path
from prior.vposer.model import VPoser

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"  # prior/checkpoints: the shipped weights
DEFAULT_CHECKPOINT = CHECKPOINTS / "vposer_default.pt"
MODEL_PREFIX = "vp_model."
TRAINER_ONLY_PREFIXES = ("bm_train.",)
_VAL_LOSS = re.compile(r"val_loss=([0-9.eE+-]+?)(?:\.ckpt$|[-_])")


class CheckpointKeyError(KeyError, ValueError):
    """A checkpoint's weights do not match the model: lists missing and unexpected keys.

    Also a ValueError, so callers catching bad checkpoint files with ValueError get it."""

    def __init__(self, path: Path, missing: list[str], unexpected: list[str], what: str = "VPoser v2") -> None:
        self.missing, self.unexpected = missing, unexpected
        parts = [
            f"missing keys: {', '.join(missing)}" if missing else "",
            f"unexpected keys: {', '.join(unexpected)}" if unexpected else "",
        ]
        super().__init__(f"{path} does not hold {what} weights; " + "; ".join(p for p in parts if p))

    def __str__(self) -> str:  # KeyError's would quote the message
        return str(self.args[0])


def read_formatted(path: Path, fmt: str, what: str, map_location: str | torch.device = "cpu") -> dict:
    """A {"format", "layout", "state_dict"} checkpoint written by `torch.save`, read with weights_only=True;
    ValueError naming `path` and `what` when it is not one of format `fmt`."""
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not {what} checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(raw, dict) or raw.get("format") != fmt or not isinstance(raw.get("state_dict"), dict):
        raise ValueError(f"{path}: not {what} checkpoint (expected format {fmt!r})")
    return raw


def load_strictly(model: torch.nn.Module, state: dict, path: Path, what: str) -> None:
    """Load `state` into `model`, raising CheckpointKeyError naming the missing and unexpected keys."""
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointKeyError(path, missing, unexpected, what)
    model.load_state_dict(state, strict=True)


def export_run(
    out_dir: Path, weights: Path, weights_file: str, metrics_file: str, companions: Sequence[str] = ()
) -> None:
    """Copy a training run's weights, config and metrics (`out_dir`/`weights_file`, config.yaml,
    `metrics_file`) atomically beside each other: to `weights`, its .yaml and STEM_`metrics_file`.
    `companions` are endings of files named after the weights (e.g. "_latent_gmm.npz"), copied to
    STEM + ending."""
    own_stem = Path(weights_file).stem
    files = {
        out_dir / weights_file: weights,
        out_dir / "config.yaml": weights.with_suffix(".yaml"),
        out_dir / metrics_file: weights.with_name(f"{weights.stem}_{metrics_file}"),
        **{out_dir / f"{own_stem}{end}": weights.with_name(f"{weights.stem}{end}") for end in companions},
    }
    for src, dst in files.items():
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)


def save_weights(model: VPoser, path: str | Path) -> None:
    """Write the model's state_dict (tensors only) atomically with torch.save."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load(path: str | Path | None = None, map_location: str | torch.device = "cpu") -> VPoser:
    """Load a VPoser (eval mode) from the default checkpoint, a file or an experiment folder."""
    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no VPoser checkpoint at {path}")
    sizes: dict[str, int] = {}
    if path.is_dir():
        sizes = _folder_model_sizes(path)
        path = best_snapshot(path)
    state = _model_state_dict(_read(path, map_location), path)
    model = VPoser(
        num_neurons=sizes.get("num_neurons", _rows(state, "encoder_net.2.weight", 512)),
        latent_dim=sizes.get("latent_dim", _rows(state, "encoder_net.8.mu.weight", 32)),
    )
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointKeyError(path, missing, unexpected)
    model.load_state_dict(state, strict=True)
    return model.to(map_location).eval()


def _read(path: Path, map_location: str | torch.device) -> object:
    """torch.load(weights_only=True), with a ValueError for files that are not checkpoints."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(
            f"{path}: not a VPoser checkpoint ({type(e).__name__}: {e}); pass an official VPoser v2 "
            ".ckpt, an experiment folder, or a prior.vposer.train output"
        ) from e


def _model_state_dict(raw: object, path: Path) -> dict[str, torch.Tensor]:
    """The VPoser weights inside a loaded checkpoint object (plain or Lightning-style)."""
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path} is not a state_dict nor a Lightning checkpoint with a 'state_dict'")
    if not any(k.startswith(MODEL_PREFIX) for k in state):
        return dict(state)
    return {
        (k[len(MODEL_PREFIX) :] if k.startswith(MODEL_PREFIX) else k): v
        for k, v in state.items()
        if not k.startswith(TRAINER_ONLY_PREFIXES)
    }


def best_snapshot(folder: Path) -> Path:
    """The checkpoint to use in an experiment folder: lowest `val_loss=` in the name, else newest."""
    snaps = sorted((folder / "snapshots").glob("*.ckpt"))
    if not snaps:
        raise FileNotFoundError(f"no snapshots/*.ckpt in the experiment folder {folder}")
    scored = [(float(m.group(1)), p) for p in snaps if (m := _VAL_LOSS.search(p.name))]
    if scored:
        return min(scored)[1]
    return max(snaps, key=lambda p: p.stat().st_mtime)


def _folder_model_sizes(folder: Path) -> dict[str, int]:
    """num_neurons / latent_dim from a V02_05-style `*.yaml` in the folder, when one has them."""
    for cfg_path in sorted(folder.glob("*.yaml")):
        params = OmegaConf.load(cfg_path).get("model_params") or {}
        sizes = {"num_neurons": params.get("num_neurons"), "latent_dim": params.get("latentD")}
        if all(isinstance(v, int) for v in sizes.values()):
            return sizes
    return {}


def _rows(state: dict[str, torch.Tensor], key: str, default: int) -> int:
    """A layer width read from the weights (the default when the key is absent: reported later)."""
    return int(state[key].shape[0]) if key in state else default
