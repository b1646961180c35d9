"""Fitting configuration: configs/fit.yaml, a user YAML on top, then dotted overrides."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig, OmegaConf

from body.io import write_text

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "fit.yaml"


class ConfigError(ValueError):
    """A config file or override that cannot be used (the message says which)."""


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    """Defaults, then the YAML at `path`, then `key.sub=value` overrides.

    Unknown keys are refused so that a typo does not silently do nothing.
    """
    cfg = OmegaConf.load(DEFAULT_CONFIG)
    OmegaConf.set_struct(cfg, True)
    layers = []
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"config file {path} not found")
        layers.append(OmegaConf.load(path))
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must look like key.sub=value, got {bad}")
    layers.append(OmegaConf.from_dotlist(list(overrides)))
    try:
        cfg = OmegaConf.merge(cfg, *layers)
    except Exception as e:  # omegaconf raises several types; all mean a bad key or value
        raise ConfigError(f"bad config: {e}") from None
    _check(cfg)
    return cfg


def _check(cfg: DictConfig) -> None:
    n = len(cfg.stages.pose_prior)
    for key, value in cfg.stages.items():
        if key != "bending_ratio" and len(value) != n:
            raise ConfigError(f"stages.{key} has {len(value)} entries but stages.pose_prior has {n}")
    if cfg.prior.kind not in ("vposer", "gmm", "none"):
        raise ConfigError(f"prior.kind must be vposer, gmm or none, got {cfg.prior.kind!r}")
    if cfg.video.overlap >= cfg.video.window:
        raise ConfigError("video.overlap must be smaller than video.window")


def save_config(cfg: DictConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    write_text(path, OmegaConf.to_yaml(cfg, resolve=True))
