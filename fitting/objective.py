"""The weighted objective: a stage's terms on some rows of a problem, in calls of fixed sizes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from body.base import BodyModel
from fitting.problem import Problem
from fitting.rowwise import Out, in_chunks
from fitting.starts import Anchor
from fitting.terms import TERMS, Evaluation, Term
from fitting.variables import BY_NAME
from prior.pose_spaces import PoseSpace


@dataclass(frozen=True)
class RowCalls:
    """Calls of the body model and networks that always see `frames_per_call` frames (0: all at
    once), so that a row's result does not depend on its batch (`fitting.rowwise`). The objective's
    evaluations in L-BFGS may also use calls of multiples of it up to `max_frames_per_call` frames,
    once a probe has seen them round a row as the unit does (`Driver`; `verdicts` caches its answers)."""

    frames_per_call: int
    device: torch.device
    max_frames_per_call: int = 0  # <= frames_per_call: the unit only
    # probe key -> (rows per call allowed, the largest size probed)
    verdicts: dict = field(default_factory=dict, compare=False, repr=False)

    def rows_per_call(self, problem: Problem) -> int:
        """Rows of `problem` per call."""
        return 0 if self.frames_per_call <= 0 else max(1, self.frames_per_call // problem.frames)

    def max_rows_per_call(self, problem: Problem) -> int:
        """The most rows of `problem` per call that `max_frames_per_call` asks for: a multiple of
        `rows_per_call` (itself when no more is asked for)."""
        unit = self.rows_per_call(problem)
        if unit <= 0 or self.max_frames_per_call <= self.frames_per_call:
            return unit
        return max(unit, self.max_frames_per_call // problem.frames // unit * unit)

    def over(self, problem: Problem, fn: Callable[[torch.Tensor], Out], n: int | None = None) -> Out:
        """fn(rows) over `n` rows (default: all of `problem`'s) in calls of a fixed size."""
        n = problem.rows if n is None else n
        return in_chunks(fn, n, self.rows_per_call(problem), self.device)


class Objective:
    """The weighted terms of a stage for one body model and pose space (`fitting.terms`)."""

    def __init__(self, model: BodyModel, space: PoseSpace, rho: float) -> None:
        self.model = model
        self.space = space
        self.rho = rho  # Geman-McClure scale of the keypoint residuals
        self._terms: dict[str, Term] = {}

    def evaluation(self, v: dict[str, torch.Tensor], start: Anchor, problem: Problem) -> Evaluation:
        """What the terms read for variables `v` (the body is posed on first use, once)."""
        return Evaluation(v, start, problem, self.model, self.space, self.rho)

    def terms(self, e: Evaluation, weights: dict[str, float]) -> dict[str, torch.Tensor]:
        """Weighted terms (B, T) of a stage; terms with weight 0, or whose variables are absent, are left out."""
        out = {}
        for name, w in weights.items():
            if w == 0:
                continue
            if name not in self._terms:
                self._terms[name] = TERMS.create(name)
            t = self._terms[name]
            if all(k in e.v for k in t.reads):
                out[name] = t(e) * w**2
        return out

    def row_terms(
        self,
        v: dict[str, torch.Tensor],
        start: Anchor,
        problem: Problem,
        rows: torch.Tensor,
        weights: dict[str, float],
        moved: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Weighted terms (R, T) of some rows of the problem; `moved` replaces some variables of those
        rows (an optimiser's trial values), frozen frames keeping their start values."""
        sub = {k: x[rows] for k, x in v.items()}
        start_rows = start.take(rows)
        if moved:
            sub.update(moved)
            hold_frozen(sub, start_rows.variables, problem.frozen[rows], list(moved))
        return self.terms(self.evaluation(sub, start_rows, problem.take(rows)), weights)


def hold_frozen(
    v: dict[str, torch.Tensor], start: dict[str, torch.Tensor], frozen: torch.Tensor, free: list[str]
) -> None:
    """Frozen frames (B, T) of the free per-frame variables back to their start values, in place."""
    for k in free:
        if not BY_NAME[k].per_row:
            mask = frozen.reshape(*frozen.shape, *([1] * (v[k].dim() - frozen.dim())))
            v[k] = torch.where(mask, start[k], v[k])
