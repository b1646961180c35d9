"""Stages as data: each one's free variables, L-BFGS iteration limit and term weights (configs/fit.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from omegaconf import DictConfig

from fitting.terms import TERMS


@dataclass(frozen=True)
class Stage:
    """One optimisation stage: which variables move, for how many iterations, under which weights."""

    name: str
    free: tuple[str, ...]
    max_iter: int
    weights: dict[str, float]  # term name -> weight (enters the loss squared)


def parse_stage(name: str, s: Mapping[str, Any], default_max_iter: int) -> Stage:
    """Stage `name` from its config entry (`stages.NAME`); without `max_iter` it takes `default_max_iter`."""
    max_iter = default_max_iter if s["max_iter"] is None else s["max_iter"]
    return Stage(name, tuple(s["free"]), int(max_iter), {k: float(w) for k, w in s["weights"].items()})


def check_stages(cfg: DictConfig) -> list[str]:
    """Problems of the stage settings: unknown stages in a schedule or loss terms (empty when fine)."""
    errors = []
    for key, names in (("schedule", cfg.schedule), ("video.schedule", cfg.video.schedule)):
        if not names:
            errors.append(f"{key} is empty; list stage names from `stages`")
        for name in names:
            if name not in cfg.stages:
                errors.append(f"{key}: unknown stage {name!r}; stages are {', '.join(cfg.stages)}")
    for name, s in cfg.stages.items():  # keys and variables: the schema (fitting.config.StageConfig)
        if bad := [t for t in s.weights if t not in TERMS]:
            errors.append(f"stages.{name}.weights: unknown loss terms {bad}; known terms: {', '.join(TERMS.names())}")
    return errors
