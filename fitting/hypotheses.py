"""Start hypotheses: several starts per frame, fitted as extra rows of one batch; the lowest final loss wins.

A generator looks at the frames (one row each) and returns which frames it
starts and the variables it sets for them (any of `fitting.stages.VARIABLES`,
per frame); what it leaves out comes from the default start (the prior's mean
pose, average shape, the orientation the 2D torso suggests, and the translation
that puts that body over the torso). Generators are named in
`init.hypotheses`; a new one is a `Hypothesis` subclass decorated with `@register`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from fitting.camera import TorsoView, initial_orientation
from fitting.problem import Problem
from fitting.registry import Registry

StartValues = dict[str, torch.Tensor]  # variable -> (M, ...) values for M frames


@dataclass
class StartContext:
    """What generators see: the frames as a problem of one row each, and how their torsos look."""

    problem: Problem
    view: TorsoView


class Hypothesis:
    """A start generator: `__call__` gives (frames (M,), their start values)."""

    name: ClassVar[str]

    def __call__(self, ctx: StartContext) -> tuple[torch.Tensor, StartValues]:
        raise NotImplementedError


HYPOTHESES: Registry[Hypothesis] = Registry("start hypothesis")
register = HYPOTHESES.register


@register
class TorsoStart(Hypothesis):
    """Every frame, turned as its 2D torso suggests (SMPLify-X's start)."""

    name = "torso"

    def __call__(self, ctx: StartContext) -> tuple[torch.Tensor, StartValues]:
        frames = torch.arange(ctx.problem.rows, device=ctx.view.yaw.device)
        return frames, {"global_orient": initial_orientation(ctx.view.roll, ctx.view.yaw)}


@register
class SideViewTwin(Hypothesis):
    """Side views also start turned the other way (facing image left vs right; SMPLify-X's retry)."""

    name = "side_view_twin"

    def __call__(self, ctx: StartContext) -> tuple[torch.Tensor, StartValues]:
        frames = ctx.view.ambiguous.nonzero().flatten()
        return frames, {"global_orient": initial_orientation(ctx.view.roll[frames], -ctx.view.yaw[frames])}


class GivenStart(Hypothesis):
    """Every frame from the same given variables (e.g. a video's last fitted frame)."""

    name = "given"

    def __init__(self, values: dict[str, torch.Tensor]) -> None:
        self.values = values  # variable -> one frame's value

    def __call__(self, ctx: StartContext) -> tuple[torch.Tensor, StartValues]:
        n = ctx.problem.rows
        return torch.arange(n), {k: x.reshape(1, -1).expand(n, -1) for k, x in self.values.items()}


@dataclass
class Rows:
    """The rows of a multi-start batch: each row's frame and hypothesis, and the start values per block."""

    frame: np.ndarray  # (R,)
    hypothesis: np.ndarray  # (R,) index into the generators
    blocks: list[tuple[torch.Tensor, StartValues]]  # (row indices, values) per generator

    @staticmethod
    def expand(generators: list[Hypothesis], ctx: StartContext) -> "Rows":
        """One row per (frame, hypothesis) the generators give, in generator order."""
        frames, hyps, blocks, start = [], [], [], 0
        for k, gen in enumerate(generators):
            f, values = gen(ctx)
            f = f.to("cpu").long()
            blocks.append((torch.arange(start, start + len(f)), values))
            frames.append(f.numpy())
            hyps.append(np.full(len(f), k))
            start += len(f)
        rows = Rows(np.concatenate(frames), np.concatenate(hyps), blocks)
        if missing := sorted(set(range(ctx.problem.rows)) - set(rows.frame.tolist())):
            names = [g.name for g in generators]
            raise ValueError(f"start hypotheses {names} give no start for frames {missing}; include 'torso'")
        return rows

    def choose(self, final: np.ndarray, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The winning row of each of `n` frames (lowest finite final loss; ties: the earlier
        hypothesis) and every hypothesis' final loss (n, k) (NaN where it gave no start)."""
        losses = np.full((n, k), np.nan)
        losses[self.frame, self.hypothesis] = final
        best = np.full(n, -1)
        for r in range(len(self.frame)):
            f = self.frame[r]
            if best[f] < 0 or _finite_or_inf(final[r]) < _finite_or_inf(final[best[f]]):
                best[f] = r
        return best, losses


def _finite_or_inf(x: float) -> float:
    return float(x) if np.isfinite(x) else float("inf")
