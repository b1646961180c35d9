"""The stage driver: runs a schedule of stages over a problem with the batched L-BFGS.

Rows of a batch are independent problems (`fitting.optimize.minimize`). A row
holds T frames: T = 1 for images; a video window has T > 1 and one shape. The
variables are those of `fitting.variables` that the model and the keypoints have.
Each stage frees its variables (less those held) and minimises the weighted sum of
its terms (`fitting.objective`); frames marked frozen keep their start values.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import torch

from fitting.objective import Objective, RowCalls, hold_frozen
from fitting.optimize import LbfgsOptions, minimize, value_and_grad
from fitting.problem import Problem
from fitting.rowwise import call_sizes_agree
from fitting.stages import Stage
from fitting.starts import Anchor

log = logging.getLogger(__name__)

# stage name, iteration, rows (R,) still iterating, their weighted terms {name: (R, T)}
IterationHook = Callable[[str, int, torch.Tensor, dict[str, torch.Tensor]], None]


@dataclass
class RunResult:
    v: dict[str, torch.Tensor]  # final variables (B, T, ...); per-row ones (B, S)
    start: Anchor  # what the schedule started from
    losses: np.ndarray  # (B, T, stages) each frame's loss after each stage
    iterations: np.ndarray  # (B, stages) L-BFGS iterations of each row

    def take(self, rows: np.ndarray) -> "RunResult":
        """The result of some rows."""
        pick = torch.as_tensor(rows, device=next(iter(self.v.values())).device)
        v = {k: x[pick] for k, x in self.v.items()}
        return RunResult(v, self.start.take(pick), self.losses[rows], self.iterations[rows])

    def then(self, later: "RunResult") -> "RunResult":
        """This run (of the same rows) continued by `later`, its stages appended."""
        losses = np.concatenate([self.losses, later.losses], 2)
        return RunResult(later.v, self.start, losses, np.concatenate([self.iterations, later.iterations], 1))


class Driver:
    """Runs stages of an objective with L-BFGS (`options`: its limits; a stage sets `max_iter`)."""

    def __init__(self, objective: Objective, calls: RowCalls, options: LbfgsOptions) -> None:
        self.objective = objective
        self.calls = calls
        self.options = options
        self.evaluations = 0  # batched objective calls so far (for benchmarks)
        self.probe_seconds = 0.0  # time spent checking call sizes (`_max_rows`)

    def run(
        self,
        problem: Problem,
        v: dict[str, torch.Tensor],
        start: Anchor,
        stages: Sequence[Stage],
        hold: Sequence[str] = (),
        hook: IterationHook | None = None,
    ) -> RunResult:
        """Run `stages` from `v` (B, T, ...); variables in `hold` and frames in `problem.frozen` stay.
        `start`: what terms keeping a fit near its start read (`fitting.starting.Starter.anchor`; a
        schedule continued after pruning passes its run's). `hook` sees every L-BFGS iteration's
        weighted terms."""
        v = {k: x.detach().clone() for k, x in v.items()}
        losses = np.zeros((problem.rows, problem.frames, len(stages)), np.float32)
        iters = np.zeros((problem.rows, len(stages)), np.int64)
        row_terms = self.objective.row_terms
        for si, stage in enumerate(stages):
            free = [k for k in stage.free if k in v and k not in hold]
            if free:
                iters[:, si] = self._minimize(problem, v, start, stage, free, hook)
            with torch.no_grad():
                terms = self.calls.over(problem, lambda r: row_terms(v, start, problem, r, stage.weights))
                losses[:, :, si] = sum(terms.values()).cpu().numpy()
            log.debug("stage %s: mean loss %.4g", stage.name, float(losses[:, :, si].mean()))
        return RunResult(v, start, losses, iters)

    def _minimize(
        self,
        problem: Problem,
        v: dict[str, torch.Tensor],
        start: Anchor,
        stage: Stage,
        free: list[str],
        hook: IterationHook | None,
    ) -> np.ndarray:
        """One stage's L-BFGS over the `free` variables; updates `v` in place, returns iterations per row."""
        packer = _Packer(v, free)

        def rows_terms(x: torch.Tensor, rows: torch.Tensor) -> dict[str, torch.Tensor]:
            return self.objective.row_terms(v, start, problem, rows, stage.weights, packer.unpack(x))

        def objective(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return sum(rows_terms(x, rows).values()).sum(1)

        callback = None
        if hook is not None:

            def callback(iteration: int, rows: torch.Tensor, x: torch.Tensor) -> None:
                with torch.no_grad():
                    terms = self.calls.over(problem, lambda i: rows_terms(x[i], rows[i]), len(rows))
                    hook(stage.name, iteration, rows, terms)

        x0 = packer.pack(v)
        options = replace(
            self.options,
            max_iter=stage.max_iter,
            rows_per_call=self.calls.rows_per_call(problem),
            max_rows_per_call=self._max_rows(problem, stage, free, objective, x0),
        )
        result = minimize(objective, x0, options, callback=callback)
        self.evaluations += result.evaluations
        v.update(packer.unpack(result.x))
        hold_frozen(v, start.variables, problem.frozen, free)
        return result.iterations.cpu().numpy()

    def _max_rows(
        self,
        problem: Problem,
        stage: Stage,
        free: list[str],
        objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        x0: torch.Tensor,
    ) -> int:
        """The most rows per objective call this stage may use: `RowCalls.max_rows_per_call` where a
        probe of the stage's objective at `x0` saw every such call size give every row the same bits
        as calls of `rows_per_call` (`fitting.rowwise.call_sizes_agree`), else less. The probe checks
        the sizes this batch can use (up to its rows), once per fitter (its model, dtype and device)
        per stage kind (free variables, weighted terms), torch threads, frames per row and keypoint
        sets, and again only for a larger batch; a lone call of the unit needs no probe."""
        unit, most = self.calls.rows_per_call(problem), self.calls.max_rows_per_call(problem)
        if most <= unit or problem.rows <= unit:
            return unit
        need = min(most, -(-problem.rows // unit) * unit)
        # The cache is the fitter's (one model, dtype and device): the key names what varies within it.
        key = (
            tuple(free),
            tuple(sorted(k for k, w in stage.weights.items() if w != 0)),
            torch.get_num_threads(),
            problem.frames,
            tuple(problem.layout.sets),  # the keypoints' count shapes the terms' kernels too
        )
        agreed, probed = self.calls.verdicts.get(key, (unit, unit))
        if agreed == probed < need:  # no size has differed so far, and this batch can use larger calls
            began = time.perf_counter()
            probe = lambda i: value_and_grad(objective, x0[i], i)  # noqa: E731
            agreed = call_sizes_agree(probe, problem.rows, unit, need, x0.device)
            self.probe_seconds += time.perf_counter() - began
            self.calls.verdicts[key] = (agreed, need)
            if agreed < need:
                log.debug(
                    "stage %s: calls of %d rows round a row unlike calls of %d; calls of at most %d rows",
                    stage.name,
                    agreed + unit,
                    unit,
                    agreed,
                )
        return agreed


class _Packer:
    """Named (B, ...) tensors <-> one flat (B, D) vector per row."""

    def __init__(self, template: dict[str, torch.Tensor], names: list[str]) -> None:
        self.names = names
        self.shapes = [template[n].shape[1:] for n in names]
        self.sizes = [int(np.prod(s)) for s in self.shapes]

    def pack(self, v: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([v[n].reshape(v[n].shape[0], -1) for n in self.names], 1)

    def unpack(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(x, self.sizes, dim=1)
        return {n: p.reshape(x.shape[0], *s) for n, p, s in zip(self.names, parts, self.shapes)}
