"""The driver: runs a schedule of stages over a problem with the batched L-BFGS.

Rows of a batch are independent problems (`fitting.optimize.minimize`). A row
holds T frames: T = 1 for images; a video window has T > 1 and one shape. Per
frame the variables are the pose-space variable, global orientation and
translation in camera coordinates, and hands, jaw and expression where the
model and the keypoints have them; per row, shape. Each stage frees its
variables (less those held) and minimises the weighted sum of its terms; frames
marked frozen keep their start values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from omegaconf import DictConfig

from body.base import BodyModel
from body.keypoint_sets import keypoint_names
from body.skeleton import NUM_BODY_JOINTS
from fitting.camera import TorsoView, init_translation, initial_orientation, torso_view
from fitting.optimize import LbfgsOptions, minimize
from fitting.priors import PoseSpace
from fitting.problem import Problem
from fitting.rowwise import Out, in_chunks
from fitting.stages import Stage
from fitting.starts import Anchor, Start
from fitting.targets import BODY, HAND
from fitting.terms import TERMS, Evaluation, Term, body_skeleton, pose_body
from fitting.variables import BY_NAME, POSE, VARIABLES, Variable, flatten

log = logging.getLogger(__name__)

# stage name, iteration, rows (R,) still iterating, their weighted terms {name: (R, T)}
IterationHook = Callable[[str, int, torch.Tensor, dict[str, torch.Tensor]], None]


@dataclass
class RunResult:
    v: dict[str, torch.Tensor]  # final variables (B, T, ...); shape (B, S)
    start: Anchor  # what the schedule started from
    losses: np.ndarray  # (B, T, stages) each frame's loss after each stage
    iterations: np.ndarray  # (B, stages) L-BFGS iterations of each row

    def take(self, rows: np.ndarray) -> "RunResult":
        """The result of some rows."""
        pick = torch.as_tensor(rows, device=next(iter(self.v.values())).device)
        take = lambda d: {k: x[pick] for k, x in d.items()}  # noqa: E731
        return RunResult(take(self.v), self.start.take(pick), self.losses[rows], self.iterations[rows])

    def then(self, later: "RunResult") -> "RunResult":
        """This run (of the same rows) continued by `later`, its stages appended."""
        losses = np.concatenate([self.losses, later.losses], 2)
        return RunResult(later.v, self.start, losses, np.concatenate([self.iterations, later.iterations], 1))


class Engine:
    """Start values, the weighted objective and the stage driver for one body model and pose space."""

    def __init__(self, model: BodyModel, space: PoseSpace, cfg: DictConfig) -> None:
        self.model = model
        self.space = space
        self.rho = float(cfg.data.rho)
        self.side_view_cos = float(cfg.init.side_view_cos)
        o = cfg.optimizer
        self.frames_per_call = int(o.frames_per_call)
        self.options = LbfgsOptions(
            history_size=o.history_size, rel_tolerance=o.rel_tolerance, max_line_search=o.max_line_search
        )
        self.evaluations = 0  # batched objective calls so far (for benchmarks)
        self._terms: dict[str, Term] = {}
        with torch.no_grad():  # shoulder width / torso length of the average body, to read yaw off 2D shoulders
            k = model(shape=torch.zeros(1, model.num_shape, device=model.device, dtype=model.dtype)).keypoints(
                "coco17"
            )[0]
        at = {n: k[i] for i, n in enumerate(keypoint_names("coco17"))}
        shoulders = (at["left_shoulder"] + at["right_shoulder"]) / 2
        hips = (at["left_hip"] + at["right_hip"]) / 2
        self.width_ratio = float((at["left_shoulder"] - at["right_shoulder"]).norm() / (shoulders - hips).norm())

    def rows_per_call(self, problem: Problem) -> int:
        """Rows of `problem` per call of the body model (`optimizer.frames_per_call` frames; 0: all at once)."""
        return 0 if self.frames_per_call <= 0 else max(1, self.frames_per_call // problem.frames)

    def rowwise(self, problem: Problem, fn: Callable[[torch.Tensor], Out], n: int | None = None) -> Out:
        """fn(rows) over `n` rows (default: all of `problem`'s) in calls of a fixed size, so that a row's
        result does not depend on its batch (`fitting.rowwise`)."""
        n = problem.rows if n is None else n
        return in_chunks(fn, n, self.rows_per_call(problem), self.model.device)

    # ----- start values ------------------------------------------------------
    def torso_view(self, problem: Problem) -> TorsoView:
        """Roll, yaw and side-view flag of every frame (B*T), from its 2D torso."""
        n = problem.rows * problem.frames
        return torso_view(
            problem.xy.reshape(n, -1, 2),
            problem.body_conf().reshape(n, -1),
            problem.layout.torso,
            problem.layout.shoulders,
            self.width_ratio,
            self.side_view_cos,
        )

    def start(
        self,
        problem: Problem,
        blocks: Sequence[tuple[torch.Tensor, Start]] = (),
        view: TorsoView | None = None,
    ) -> dict[str, torch.Tensor]:
        """Start variables (B, T, ...): the prior's mean pose, average shape, turned as the 2D torso
        suggests (`view` of the B*T frames when already known); `blocks` (rows, start) override
        variables of some rows (values (M, ...) per row, the same for all its frames). Rows whose
        translation is not given are placed over their torso."""
        b, t, n = problem.rows, problem.frames, problem.rows * problem.frames
        kw = dict(device=self.model.device, dtype=self.model.dtype)
        view = self.torso_view(problem) if view is None else view
        given = {
            POSE: self.space.initial(n, self.model.device, self.model.dtype).reshape(b, t, -1),
            "global_orient": initial_orientation(view.roll, view.yaw).reshape(b, t, 3),
        }
        v = {}
        for s in self.variables(problem):
            v[s.name] = given[s.name] if s.name in given else torch.zeros(s.dims(b, t, self.model, self.space), **kw)
        placed = torch.zeros(b, dtype=torch.bool, device=self.model.device)
        for rows, given_start in blocks:
            rows = rows.to(self.model.device)
            for k, x in given_start.values.items():
                if k in v:
                    old = v[k][rows]  # per row (M, S); per frame (M, T, ...), one value for all T frames
                    x = x.reshape(old.shape) if BY_NAME[k].per_row else x.reshape(len(rows), 1, *old.shape[2:])
                    v[k][rows] = x.to(**kw).expand_as(old)
            if "transl" in given_start.values:
                placed[rows] = True

        def points(rows: torch.Tensor) -> torch.Tensor:  # the body's points about its pelvis (R, T, K, 3)
            flat = flatten({k: x[rows] for k, x in v.items()})
            body = pose_body(self.model, flat, self.space.body_pose(flat[POSE]), full_mesh=False)
            return torch.cat([body.keypoints(s) for s in problem.layout.sets], 1).reshape(len(rows), t, -1, 3)

        with torch.no_grad():  # for the rows still at zero translation
            pts = self.rowwise(problem, points).reshape(n, -1, 3)
        transl = init_translation(
            problem.xy.reshape(n, -1, 2),
            problem.body_conf().reshape(n, -1),
            pts,
            problem.layout.torso,
            problem.focal.reshape(n, 2),
            problem.center.reshape(n, 2),
        )
        v["transl"] = torch.where(placed[:, None, None], v["transl"], transl.reshape(b, t, 3))
        return v

    def anchor(
        self, problem: Problem, v: dict[str, torch.Tensor], blocks: Sequence[tuple[torch.Tensor, Start]] = ()
    ) -> Anchor:
        """What terms keeping a fit near its start read: the start variables `v` (B, T, ...) and the
        skeleton of the body each row starts as, posed with the `body_pose` of a block's (rows, start)
        where it gives one."""
        b, t = problem.rows, problem.frames
        start = {k: x.detach().clone() for k, x in v.items()}
        given = torch.zeros(b, dtype=torch.bool, device=self.model.device)
        poses = torch.zeros(b, t, NUM_BODY_JOINTS, 3, device=self.model.device, dtype=self.model.dtype)
        for rows, given_start in blocks:
            if given_start.body_pose is not None:
                rows = rows.to(self.model.device)
                poses[rows] = given_start.body_pose.to(poses).reshape(len(rows), -1, NUM_BODY_JOINTS, 3)
                given[rows] = True

        def skeleton(rows: torch.Tensor) -> torch.Tensor:
            flat = flatten({k: x[rows] for k, x in start.items()})
            own = given[rows].repeat_interleave(t)[:, None, None]
            body_pose = torch.where(own, poses[rows].flatten(0, 1), self.space.body_pose(flat[POSE]))
            body = pose_body(self.model, flat, body_pose, full_mesh=False)
            return body_skeleton(body, flat["global_orient"]).reshape(len(rows), t, -1, 3)

        with torch.no_grad():
            return Anchor(start, self.rowwise(problem, skeleton))

    def variables(self, problem: Problem) -> list[Variable]:
        """The variables fitted on `problem`: the body's, and those of the parts (hands, face) that both
        the model and the problem's detections have."""
        return [s for s in VARIABLES if s.part == BODY or self._uses(problem, s.part)]

    def _uses(self, problem: Problem, part: int) -> bool:
        has = self.model.has_hands if part == HAND else self.model.has_face
        return has and bool((problem.conf[..., problem.layout.part == part] > 0).any())

    # ----- objective ---------------------------------------------------------
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
            _hold_frozen(sub, start_rows.variables, problem.frozen[rows], list(moved))
        return self.terms(self.evaluation(sub, start_rows, problem.take(rows)), weights)

    # ----- optimisation ------------------------------------------------------
    def run(
        self,
        problem: Problem,
        v: dict[str, torch.Tensor],
        stages: Sequence[Stage],
        hold: Sequence[str] = (),
        hook: IterationHook | None = None,
        start: Anchor | None = None,
    ) -> RunResult:
        """Run `stages` from `v` (B, T, ...); variables in `hold` and frames in `problem.frozen` stay.
        `hook` sees every L-BFGS iteration's weighted terms. `start`: what terms keeping a fit near its
        start read (default `anchor(problem, v)`; a schedule continued after pruning passes its run's)."""
        v = {k: x.detach().clone() for k, x in v.items()}
        start = self.anchor(problem, v) if start is None else start
        losses = np.zeros((problem.rows, problem.frames, len(stages)), np.float32)
        iters = np.zeros((problem.rows, len(stages)), np.int64)
        for si, stage in enumerate(stages):
            free = [k for k in stage.free if k in v and k not in hold]
            if free:
                iters[:, si] = self._minimize(problem, v, start, stage, free, hook)
            with torch.no_grad():
                terms = self.rowwise(problem, lambda r: self.row_terms(v, start, problem, r, stage.weights))
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
            return self.row_terms(v, start, problem, rows, stage.weights, packer.unpack(x))

        def objective(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return sum(rows_terms(x, rows).values()).sum(1)

        callback = None
        if hook is not None:

            def callback(iteration: int, rows: torch.Tensor, x: torch.Tensor) -> None:
                with torch.no_grad():
                    terms = self.rowwise(problem, lambda i: rows_terms(x[i], rows[i]), len(rows))
                    hook(stage.name, iteration, rows, terms)

        per_call = self.rows_per_call(problem)
        options = LbfgsOptions(**{**self.options.__dict__, "max_iter": stage.max_iter, "rows_per_call": per_call})
        result = minimize(objective, packer.pack(v), options, callback=callback)
        self.evaluations += result.evaluations
        v.update(packer.unpack(result.x))
        _hold_frozen(v, start.variables, problem.frozen, free)
        return result.iterations.cpu().numpy()


def _hold_frozen(
    v: dict[str, torch.Tensor], start: dict[str, torch.Tensor], frozen: torch.Tensor, free: list[str]
) -> None:
    """Frozen frames (B, T) of the free per-frame variables back to their start values, in place."""
    for k in free:
        if not BY_NAME[k].per_row:
            mask = frozen.reshape(*frozen.shape, *([1] * (v[k].dim() - frozen.dim())))
            v[k] = torch.where(mask, start[k], v[k])


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
