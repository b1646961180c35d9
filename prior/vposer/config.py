"""The VPoser training config (configs/train_prior.yaml, schema configs.training.VPoserTraining) and the names in a
training run's folder, without Lightning: evaluation and the latent mixture read them too."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig

import configs
from configs.training import VPoserTraining
from prior.vposer.checkpoint import DEFAULT_CHECKPOINT

RUN_WEIGHTS = "vposer.pt"  # the weights' name in a prior.vposer.train folder
RUN_METRICS = "train_metrics.json"  # written beside them when the run finishes


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    """configs/train_prior.yaml, then the YAML at `path`, then dotted `key=value` overrides, checked
    against VPoserTraining. Bad YAML, unknown keys, bad overrides and values raise ConfigError (a ValueError)."""
    return configs.load_config("train_prior", VPoserTraining, path, overrides)


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
