"""Fitting configuration: configs/fit.yaml, a user YAML on top, then dotted overrides (`configs.loader`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

from omegaconf import DictConfig

import configs
from configs import ConfigError, Rule, save_config
from fitting.export import FORMATS, UNITS
from fitting.hypotheses import HYPOTHESES
from fitting.options import FitOptions
from fitting.stages import check_stages
from fitting.variables import NAMES

__all__ = ["ConfigError", "FIT_RULES", "load_config", "load_options", "save_config"]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _positive(v: Any) -> bool:
    return _number(v) and v > 0


def _size(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _pair(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and len(v) == 2 and all(map(ok, v))


FIT_RULES: dict[str, Rule] = {
    "body.model": Rule(choices=("anny", "smplx")),
    "body.model_path": Rule(type=str),
    "body.gender": Rule(choices=("neutral", "male", "female")),
    "device": Rule(pattern=r"cpu|cuda(:\d+)?|mps", means="cpu, cuda, cuda:N or mps"),
    "threads": Rule(type=int, ge=1),
    "batch_size": Rule(ge=1),
    "prior.kind": Rule(choices=("vposer", "gmm", "none")),
    "prior.path": Rule(type=str),
    "camera.focal": Rule(
        check=lambda v: _positive(v) or _pair(_positive)(v), means="a finite number > 0 (px) or a list [fx, fy] of two"
    ),
    "camera.center": Rule(check=_pair(_number), means="a list [cx, cy] of two finite numbers"),
    "camera.fov_deg": Rule(type=float, gt=0, lt=180),
    "camera.image_size": Rule(check=_pair(_size), means="a list [w, h] of two integers >= 1"),
    "keypoints.person": Rule(choices=("all", "largest", "confident")),
    "keypoints.min_points": Rule(ge=1),
    "keypoints.min_height": Rule(type=float, ge=0),
    "keypoints.outside_margin": Rule(type=float, ge=0),
    "output.max_reprojection": Rule(type=float, gt=0),
    "output.overlay_scale": Rule(type=float, gt=0, le=1),
    "output.export": Rule(
        check=lambda v: isinstance(v, list) and set(v) <= set(FORMATS), means=f"a list of {', '.join(FORMATS)}"
    ),
    "output.units": Rule(choices=UNITS),
    "init.side_view_cos": Rule(ge=0, le=1),
    "init.initialiser": Rule(type=str),
    "init.keep": Rule(type=int, ge=1, nullable=True),
    "init.prune_after": Rule(type=str, nullable=True),
    "data.reference_size": Rule(type=float, gt=0),
    "data.rho": Rule(type=float, gt=0),
    "optimizer.max_iter": Rule(ge=1),
    "optimizer.history_size": Rule(ge=1),
    "optimizer.rel_tolerance": Rule(ge=0),
    "optimizer.max_line_search": Rule(ge=1),
    "optimizer.frames_per_call": Rule(ge=0),
    "video.window": Rule(ge=2),
    "video.overlap": Rule(ge=0),
    "video.max_gap": Rule(ge=1),
    "video.shape_frames": Rule(ge=1),
    "video.start": Rule(choices=("initialiser", "lifter")),
    "video.lifter": Rule(type=str),
    "video.lift_smoothing": Rule(ge=0),
    "video.output_smoothing": Rule(ge=0),
    "tracking.search_every": Rule(type=int, ge=1),
    "tracking.max_gap": Rule(type=int, ge=0),
    "tracking.min_length": Rule(type=int, ge=1),
    "tracking.short": Rule(choices=("still", "skip")),
    "ray.workers": Rule(type=int, ge=1, nullable=True),
    "ray.threads_per_worker": Rule(type=int, ge=1),
    "ray.gpus_per_worker": Rule(type=float, ge=0),
}
FIT_RULES.update(
    {
        "stages.*.free.*": Rule(choices=NAMES),
        "stages.*.max_iter": Rule(type=int, ge=1, nullable=True),
        "stages.*.weights.*": Rule(type=float, ge=0),
    }
)
OPEN_KEYS = ("stages", "stages.*", "stages.*.weights")  # new stages and loss terms may be added (checked by name below)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    """configs/fit.yaml, then the YAML at `path`, then `key.sub=value` overrides, checked against
    FIT_RULES; unknown keys and bad values raise ConfigError."""
    cfg = configs.load_config("fit", path, overrides, FIT_RULES, OPEN_KEYS)
    if cfg.video.overlap >= cfg.video.window:
        raise ConfigError(f"video.overlap ({cfg.video.overlap}) must be smaller than video.window ({cfg.video.window})")
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
