"""Start hypotheses: several starts per frame, fitted as extra rows of one batch; the lowest final loss wins.

A generator looks at the frames (one row each) and returns which frames it
starts and their `Start` (`fitting.starts`): the variables it sets for them (any of
`fitting.variables.VARIABLES`, per frame), and the body pose the start stands for, where the
pose space's variable only approximates it (the terms that hold a fit near its start read
that pose's skeleton); what it leaves out comes from the default start (the prior's mean
pose, average shape, the orientation the 2D torso suggests, and the translation
that puts that body over the torso). Generators are named in
`init.hypotheses`; a new one is a `Hypothesis` subclass decorated with `@register`.

`initialiser` starts from the learned initialiser's prediction (`prior.initialiser.model`:
2D keypoints -> body pose, camera-frame orientation, Anny shape), its regressed answer;
`initialiser_2` .. `initialiser_8` from a multi-hypothesis initialiser's other readings
of the limbs' depth, most probable first; `initialiser_twin` from the depth twin of
the first: every joint mirrored through the plane of the
pelvis parallel to the image, which projects (nearly) to the same 2D points -- the
classic front/back ambiguity of a single view (Sminchisescu & Triggs 2003).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from typing import TYPE_CHECKING, Callable, ClassVar, Sequence

import numpy as np
import torch

from body.base import ANNY_PHENOTYPES, BodyModel
from body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from fitting.camera import TorsoView, initial_orientation
from fitting.problem import Problem
from fitting.registry import Registry
from fitting.rowwise import in_chunks
from fitting.starts import Start
from fitting.targets import BODY, part_of
from prior.initialiser.model import Prediction
from prior.pose_spaces import PoseSpace

if TYPE_CHECKING:
    from prior.initialiser.model import Initialiser


LEARNED_SHAPE_SPACE = ANNY_PHENOTYPES  # the shapes the initialiser and the temporal lifter predict


def takes_learned_shape(model: BodyModel) -> bool:
    """Whether `model`'s shape is the one the initialiser and the temporal lifter predict (Anny's
    phenotypes); other models start from their average shape."""
    return model.shape_space == LEARNED_SHAPE_SPACE


class LearnedStart:
    """The initialiser's predictions for a problem's frames (one row each), made on first use in
    calls of `rows_per_call` frames (`fitting.rowwise`)."""

    def __init__(self, load: Callable[[], "Initialiser"], problem: Problem, rows_per_call: int = 0) -> None:
        self.load = load
        self.problem = problem
        self.rows_per_call = rows_per_call

    @cached_property
    def prediction(self) -> "Prediction":
        p, model = self.problem, self.load()
        slices = {s: sl for s, sl in p.layout.slices().items() if part_of(s) == BODY}

        def predict(rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
            sets = {s: (p.xy[rows, 0, sl], p.conf[rows, 0, sl]) for s, sl in slices.items()}
            pred = model.predict(sets, p.focal[rows, 0], p.center[rows, 0])
            return tuple(getattr(pred, f.name) for f in fields(pred))

        return Prediction(*in_chunks(predict, p.rows, self.rows_per_call, p.xy.device))


@dataclass
class StartContext:
    """What generators see: the frames as a problem of one row each, how their torsos look, the
    pose space, whether the body model takes the initialiser's shape (`takes_learned_shape`), and its
    predictions."""

    problem: Problem
    view: TorsoView
    space: PoseSpace
    learned: LearnedStart
    learned_shape: bool
    index: Sequence[int] = ()  # the frames' places in the caller's list (`Fitter.fit_frames`); () = in order


class Hypothesis:
    """A start generator: `__call__` gives (frames (M,), their start)."""

    name: ClassVar[str]

    def __call__(self, ctx: StartContext) -> tuple[torch.Tensor, Start]:
        raise NotImplementedError


HYPOTHESES: Registry[Hypothesis] = Registry("start hypothesis")
register = HYPOTHESES.register


@register
class TorsoStart(Hypothesis):
    """Every frame, turned as its 2D torso suggests (SMPLify-X's start)."""

    name = "torso"

    def __call__(self, ctx: StartContext) -> tuple[torch.Tensor, Start]:
        frames = torch.arange(ctx.problem.rows, device=ctx.view.yaw.device)
        return frames, Start({"global_orient": initial_orientation(ctx.view.roll, ctx.view.yaw)})


@register
class SideViewTwin(Hypothesis):
    """Side views also start turned the other way (facing image left vs right; SMPLify-X's retry)."""

    name = "side_view_twin"

    def __call__(self, ctx: StartContext) -> tuple[torch.Tensor, Start]:
        frames = ctx.view.ambiguous.nonzero().flatten()
        return frames, Start({"global_orient": initial_orientation(ctx.view.roll[frames], -ctx.view.yaw[frames])})


class InitialiserHypothesis(Hypothesis):
    """Every frame from one of the learned initialiser's hypotheses (rank 1: its regressed answer; 2..:
    its other readings, most probable first): body pose, orientation and (Anny) shape."""

    rank: ClassVar[int]

    def __call__(self, ctx: StartContext) -> tuple[torch.Tensor, Start]:
        pred = ctx.learned.prediction
        orient, pose = pred.every()
        if self.rank > orient.shape[1]:
            raise ValueError(
                f"init.hypotheses names {self.name!r}, but the initialiser gives {orient.shape[1]} "
                "hypotheses; drop it or pass a multi-hypothesis checkpoint as init.initialiser"
            )
        return _learned_start(ctx, orient[:, self.rank - 1], pose[:, self.rank - 1], pred.shape)


for _rank in range(1, 9):
    _name = "initialiser" if _rank == 1 else f"initialiser_{_rank}"
    register(type(f"InitialiserHypothesis{_rank}", (InitialiserHypothesis,), {"name": _name, "rank": _rank}))


@register
class InitialiserTwin(Hypothesis):
    """Every frame from the depth twin of the initialiser's prediction (see the module docstring)."""

    name = "initialiser_twin"

    def __call__(self, ctx: StartContext) -> tuple[torch.Tensor, Start]:
        pred = ctx.learned.prediction
        orient, pose = depth_twin(pred.global_orient, pred.body_pose)
        return _learned_start(ctx, orient, pose, pred.shape)


def _learned_start(
    ctx: StartContext, orient: torch.Tensor, body_pose: torch.Tensor, shape: torch.Tensor
) -> tuple[torch.Tensor, Start]:
    per_call = ctx.learned.rows_per_call
    pose = in_chunks(lambda rows: ctx.space.encode(body_pose[rows]), len(body_pose), per_call, body_pose.device)
    values = {"global_orient": orient, "pose": pose}
    if ctx.learned_shape:
        values["shape"] = shape
    return torch.arange(ctx.problem.rows, device=body_pose.device), Start(values, body_pose)


def depth_twin(global_orient: torch.Tensor, body_pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The body reflected in depth through its pelvis, as a proper (unmirrored) body.

    With M = N = diag(1, 1, -1), every joint's global rotation G becomes M G N, so a
    bone lying in the rest skeleton's x-y plane ends at M times its old position: the
    same image point under orthographic projection, the other depth. Locally that is
    N L N: axis-angle (x, y, z) -> (-x, -y, z); the global orientation R -> M R N.
    Bones with rest depth (the feet; Anny's hips, collars and head sit 2-4 cm
    forward) make it approximate: limbs land within ~3 cm of the mirrored points.
    global_orient (N, 3), body_pose (N, 21, 3) axis-angle."""
    flip = global_orient.new_tensor([1.0, 1.0, -1.0]).diag()
    orient = matrix_to_axis_angle(flip @ axis_angle_to_matrix(global_orient) @ flip)
    return orient, body_pose * body_pose.new_tensor([-1.0, -1.0, 1.0])


class GivenStart(Hypothesis):
    """Every frame from the same given variables (e.g. a video's last fitted frame)."""

    name = "given"

    def __init__(self, values: dict[str, torch.Tensor]) -> None:
        self.values = values  # variable -> one frame's value

    def __call__(self, ctx: StartContext) -> tuple[torch.Tensor, Start]:
        n = ctx.problem.rows
        frames = torch.arange(n, device=ctx.problem.xy.device)
        return frames, Start({k: x.reshape(1, -1).expand(n, -1) for k, x in self.values.items()})


class LiftedStart(Hypothesis):
    """Every frame from its own reading (e.g. the temporal lifter's over a video track): orientation
    (M, 3), body pose (M, 21, 3) of the M frames given to `fit_frames` and (Anny) shape (S,),
    encoded and anchored as the initialiser's."""

    name = "lifted"

    def __init__(self, global_orient: torch.Tensor, body_pose: torch.Tensor, shape: torch.Tensor) -> None:
        self.global_orient, self.body_pose, self.shape = global_orient, body_pose, shape

    def __call__(self, ctx: StartContext) -> tuple[torch.Tensor, Start]:
        """The readings of the context's frames (`ctx.index`: fit_frames batches frames by layout)."""
        shape = self.shape.reshape(1, -1).expand(ctx.problem.rows, -1)
        pick = torch.as_tensor(ctx.index or range(ctx.problem.rows), device=self.body_pose.device)
        return _learned_start(ctx, self.global_orient[pick], self.body_pose[pick], shape)


@dataclass
class Rows:
    """The rows of a multi-start batch: each row's frame and hypothesis, and the starts per block."""

    frame: np.ndarray  # (R,)
    hypothesis: np.ndarray  # (R,) index into the generators
    blocks: list[tuple[torch.Tensor, Start]]  # (row indices, their start) per generator

    @staticmethod
    def expand(generators: list[Hypothesis], ctx: StartContext) -> "Rows":
        """One row per (frame, hypothesis) the generators give, in generator order."""
        frames, hyps, blocks, start = [], [], [], 0
        for k, gen in enumerate(generators):
            f, given = gen(ctx)
            f = f.to("cpu").long()
            blocks.append((torch.arange(start, start + len(f), device=ctx.problem.xy.device), given))
            frames.append(f.numpy())
            hyps.append(np.full(len(f), k))
            start += len(f)
        rows = Rows(np.concatenate(frames), np.concatenate(hyps), blocks)
        if missing := sorted(set(range(ctx.problem.rows)) - set(rows.frame.tolist())):
            names = [g.name for g in generators]
            raise ValueError(f"start hypotheses {names} give no start for frames {missing}; include 'torso'")
        return rows

    def prune(self, losses: np.ndarray, keep: int) -> np.ndarray:
        """Rows (ascending) that keep each frame's `keep` lowest finite `losses` (R,) (ties: the earlier
        hypothesis; non-finite losses last)."""
        order = np.lexsort((self.hypothesis, np.where(np.isfinite(losses), losses, np.inf), self.frame))
        rank = np.empty(len(order), np.int64)
        starts = np.r_[0, np.flatnonzero(np.diff(self.frame[order])) + 1]
        rank[order] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        return np.flatnonzero(rank < keep)

    def take(self, rows: np.ndarray) -> "Rows":
        """Some of the rows (their start blocks are not kept: the starts have been used)."""
        return Rows(self.frame[rows], self.hypothesis[rows], [])

    def choose(self, final: np.ndarray, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The winning row of each of `n` frames (lowest finite final loss; ties: the earlier
        hypothesis) and every hypothesis' final loss (n, k) (NaN where it gave no start or was pruned)."""
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
