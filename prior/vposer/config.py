"""The VPoser training config (configs/train_prior.yaml and its rules) and the names in a
training run's folder, without Lightning: evaluation and the latent mixture read them too."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig

import configs
from configs import Rule
from prior.vposer.checkpoint import DEFAULT_CHECKPOINT

RUN_WEIGHTS = "vposer.pt"  # the weights' name in a prior.vposer.train folder
RUN_METRICS = "train_metrics.json"  # written beside them when the run finishes

TRAIN_RULES: dict[str, Rule] = {
    "export": Rule(type=str),
    "init_from": Rule(type=str),
    "data.dataset": Rule(type=str),
    "data.fps": Rule(type=float, gt=0),
    "data.min_change_deg": Rule(type=float, ge=0),
    "data.val_subjects": Rule(type=list),
    "data.val_subjects.*": Rule(type=str),
    "data.max_train_poses": Rule(type=int, ge=1),
    "data.max_val_poses": Rule(type=int, ge=1),
    "model.num_neurons": Rule(ge=1),
    "model.latent_dim": Rule(ge=1),
    "loss.*": Rule(ge=0),
    "loss.vertex_batch": Rule(ge=1),
    "train.seed": Rule(ge=0),
    "train.batch_size": Rule(ge=1),
    "train.lr": Rule(gt=0),
    "train.weight_decay": Rule(ge=0),
    "train.lr_factor": Rule(gt=0, lt=1),
    "train.lr_patience": Rule(ge=0),
    "train.early_stopping_patience": Rule(ge=0),
    "train.max_epochs": Rule(ge=1),
    "train.max_minutes": Rule(type=float, gt=0, nullable=True),
    "train.num_workers": Rule(ge=0),
    "train.cpu_threads": Rule(ge=1, nullable=True),
    "train.accelerator": Rule(choices=("auto", "cpu", "gpu", "cuda", "mps", "tpu")),
    "train.devices": Rule(type=(int, str, list)),
    "train.precision": Rule(
        type=(str, int),
        choices=(
            "32-true",
            "16-mixed",
            "bf16-mixed",
            "16-true",
            "bf16-true",
            "64-true",
            "transformer-engine",
            "transformer-engine-float16",
            64,
            32,
            16,
        ),
    ),
    "train.progress_refresh": Rule(ge=0),
}


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    """configs/train_prior.yaml, then the YAML at `path`, then dotted `key=value` overrides, checked
    against TRAIN_RULES. Bad YAML, unknown keys, bad overrides and values raise ConfigError (a ValueError)."""
    return configs.load_config("train_prior", path, overrides, TRAIN_RULES)


def in_training_run(weights: Path) -> bool:
    """Whether `weights` are a finished `prior.vposer.train` run's (its weights' name, beside its metrics)."""
    return weights.name == RUN_WEIGHTS and (weights.parent / RUN_METRICS).is_file()


def checkpoint_config(checkpoint: Path | None, overrides: Sequence[str] = ()) -> DictConfig:
    """The training config of a checkpoint: the defaults, its .yaml beside it when present (the
    run's config.yaml for a folder, or for the weights inside a `prior.vposer.train` folder), then
    `overrides`; unknown keys and bad values raise ConfigError."""
    weights = DEFAULT_CHECKPOINT if checkpoint is None else Path(checkpoint)
    if not weights.is_file():
        beside = weights / "config.yaml"
    elif in_training_run(weights) and not weights.with_suffix(".yaml").is_file():
        beside = weights.parent / "config.yaml"
    else:
        beside = weights.with_suffix(".yaml")
    return load_config(beside if beside.is_file() else None, overrides)
