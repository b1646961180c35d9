"""Fitting configuration: configs/fit.yaml (the default values, with their comments), a user YAML
on top, then dotted overrides, checked against the schema `FitConfig` (`configs.loader`), then
across keys (the window's overlap, stage names, start hypotheses)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from omegaconf import DictConfig

import configs
from configs import ConfigError, save_config, setting
from fitting.export import FORMATS, UNITS
from fitting.hypotheses import HYPOTHESES
from fitting.options import FitOptions
from fitting.stages import check_stages
from fitting.variables import NAMES

__all__ = ["ConfigError", "FitConfig", "load_config", "load_options", "save_config"]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _positive(v: Any) -> bool:
    return _number(v) and v > 0


def _size(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _pair(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and len(v) == 2 and all(map(ok, v))


@dataclass
class BodyConfig:
    model: str = setting(choices=("anny", "smplx"))
    model_path: Optional[str]
    gender: str = setting(choices=("neutral", "male", "female"))


@dataclass
class PriorConfig:
    kind: str = setting(choices=("vposer", "gmm", "none"))
    path: Optional[str]


@dataclass
class CameraConfig:
    focal: Any = setting(
        test=lambda v: _positive(v) or _pair(_positive)(v), means="a finite number > 0 (px) or a list [fx, fy] of two"
    )
    center: Optional[List[float]] = setting(test=_pair(_number), means="a list [cx, cy] of two finite numbers")
    fov_deg: float = setting(gt=0, lt=180)
    image_size: Optional[List[int]] = setting(test=_pair(_size), means="a list [w, h] of two integers >= 1")


@dataclass
class KeypointsConfig:
    holistic: bool
    person: str = setting(choices=("all", "largest", "confident"))
    min_points: int = setting(ge=1)
    min_height: float = setting(ge=0)
    outside_margin: float = setting(ge=0)


@dataclass
class InitConfig:
    hypotheses: List[str]  # names checked by load_config
    keep: Optional[int] = setting(ge=1)
    prune_after: Optional[str]
    side_view_cos: float = setting(ge=0, le=1)
    initialiser: Optional[str]


@dataclass
class DataConfig:
    reference_size: float = setting(gt=0)
    rho: float = setting(gt=0)


@dataclass
class StageConfig:
    free: List[str] = setting(choices=NAMES)
    max_iter: Optional[int] = setting(ge=1)
    weights: Dict[str, float] = setting(ge=0)  # loss terms by name, checked by check_stages


@dataclass
class OptimizerConfig:
    max_iter: int = setting(ge=1)
    history_size: int = setting(ge=1)
    rel_tolerance: float = setting(ge=0)
    max_line_search: int = setting(ge=1)
    frames_per_call: int = setting(ge=0)
    max_frames_per_call: int = setting(ge=0)


@dataclass
class VideoConfig:
    window: int = setting(ge=2)
    overlap: int = setting(ge=0)
    max_gap: int = setting(ge=1)
    shape_frames: int = setting(ge=1)
    start: str = setting(choices=("initialiser", "lifter"))
    lifter: Optional[str]
    lift_smoothing: float = setting(ge=0)
    schedule: List[str]
    output_smoothing: float = setting(ge=0)


@dataclass
class TrackingConfig:
    search_every: int = setting(ge=1)
    max_gap: int = setting(ge=0)
    min_length: int = setting(ge=1)
    short: str = setting(choices=("still", "skip"))


@dataclass
class OutputConfig:
    mesh: bool
    overlay: bool
    overlay_scale: float = setting(gt=0, le=1)
    video_overlay: bool
    write_thread: Optional[bool]
    export: List[str] = setting(choices=FORMATS)
    units: str = setting(choices=tuple(UNITS))
    report: bool
    max_reprojection: float = setting(gt=0)


@dataclass
class RayConfig:
    workers: Optional[int] = setting(ge=1)
    threads_per_worker: int = setting(ge=1)
    gpus_per_worker: float = setting(ge=0)


@dataclass
class FitConfig:
    """configs/fit.yaml; `stages` (and each stage's `weights`) take new entries."""

    body: BodyConfig
    device: str = setting(pattern=r"cpu|cuda(:\d+)?|mps", means="cpu, cuda, cuda:N or mps")
    threads: Optional[int] = setting(ge=1)
    batch_size: int = setting(ge=1)
    prior: PriorConfig
    camera: CameraConfig
    keypoints: KeypointsConfig
    init: InitConfig
    data: DataConfig
    schedule: List[str]
    stages: Dict[str, StageConfig]
    optimizer: OptimizerConfig
    video: VideoConfig
    tracking: TrackingConfig
    output: OutputConfig
    ray: RayConfig


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    """configs/fit.yaml, then the YAML at `path`, then `key.sub=value` overrides, checked against
    FitConfig and across keys; unknown keys and bad values raise ConfigError."""
    cfg = configs.load_config("fit", FitConfig, path, overrides)
    if cfg.video.overlap >= cfg.video.window:
        raise ConfigError(f"video.overlap ({cfg.video.overlap}) must be smaller than video.window ({cfg.video.window})")
    o = cfg.optimizer
    if o.frames_per_call > 0 and o.max_frames_per_call % o.frames_per_call:
        raise ConfigError(
            f"optimizer.max_frames_per_call ({o.max_frames_per_call}) must be a multiple of "
            f"optimizer.frames_per_call ({o.frames_per_call})"
        )
    errors = check_stages(cfg)
    if not cfg.init.hypotheses:
        errors.append("init.hypotheses is empty; name at least 'torso'")
    if bad := [h for h in cfg.init.hypotheses if h not in HYPOTHESES]:
        errors.append(f"init.hypotheses: unknown start hypotheses {bad}; known: {', '.join(HYPOTHESES.names())}")
    if cfg.init.keep is not None and cfg.init.prune_after not in cfg.schedule:
        errors.append(f"init.prune_after ({cfg.init.prune_after}) is not a stage of the schedule {list(cfg.schedule)}")
    if errors:
        raise ConfigError("; ".join(errors))
    return cfg


def load_options(path: str | Path | None = None, overrides: Sequence[str] = ()) -> FitOptions:
    """The fitter's options of `load_config(path, overrides)`."""
    return FitOptions.of(load_config(path, overrides))
