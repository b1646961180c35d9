"""The fitter's public entry points: independent frames, and sequences of frames (video windows).

`Fitter.fit_frames` fits images in one batch: every start hypothesis of every
frame is a row (`fitting.hypotheses`), the schedule `options.schedule` runs over
all rows (`fitting.driver`), and each frame keeps its lowest-loss start.
`Fitter.fit_sequence` refines consecutive frames as one row with the temporal
terms of `options.video.schedule`, holding frames already settled.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from body.base import BodyModel
from body.keypoint_sets import keypoint_names
from fitting.camera import project
from fitting.codec import to_params, to_variables
from fitting.driver import Driver, IterationHook, RunResult
from fitting.hypotheses import HYPOTHESES, Hypothesis, LearnedStart, Rows, StartContext, takes_learned_shape
from fitting.objective import Objective, RowCalls
from fitting.options import FitOptions
from fitting.problem import Problem, build_problem
from fitting.smoothing import smooth_motion
from fitting.stages import Stage
from fitting.starting import Starter
from fitting.starts import Start
from fitting.targets import FrameTargets, Layout
from fitting.variables import BY_NAME, SHAPE
from prior.initialiser.model import BODY_SETS, Initialiser
from prior.initialiser.model import load as load_initialiser
from prior.initialiser.temporal_lifter import Lift, TemporalLifter, lift
from prior.initialiser.temporal_lifter import load as load_lifter
from prior.pose_spaces import PoseSpace


@dataclass
class FitResult:
    """Fitted parameters of one frame (axis-angle; `latent` too with VPoser) and diagnostics."""

    params: dict[str, np.ndarray]
    stage_losses: np.ndarray  # this frame's loss after each stage (a video frame: its own fit, then the window's)
    iterations: np.ndarray  # L-BFGS iterations of its row in the same stages
    terms: dict[str, float]  # final weighted loss terms of this frame
    start_orient: np.ndarray  # (3,) global orientation it started from (axis-angle, camera coordinates)
    projected: dict[str, np.ndarray] = field(default_factory=dict)  # set -> (K, 2) model keypoints in px
    hypothesis: int = 0  # index of the winning start hypothesis
    # final loss of each hypothesis (NaN: it gave no start for this frame, or was pruned: `init.keep`)
    hypothesis_losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hypothesis_names: tuple[str, ...] = ()

    def after(self, first: "FitResult") -> "FitResult":
        """This refinement of a frame (a video window's) with the frame's own first fit before it:
        stage losses and iterations of both, the start of the first."""
        return replace(
            self,
            stage_losses=np.concatenate([first.stage_losses, self.stage_losses]),
            iterations=np.concatenate([first.iterations, self.iterations]),
            start_orient=first.start_orient,
            hypothesis=first.hypothesis,
            hypothesis_losses=first.hypothesis_losses,
            hypothesis_names=first.hypothesis_names,
        )

    def is_finite(self) -> bool:
        """False for a diverged fit: a non-finite loss or parameter."""
        return bool(np.isfinite(self.stage_losses).all() and all(np.isfinite(v).all() for v in self.params.values()))


class Fitter:
    """Fits a body model to 2D keypoints with a pose space and `options` (`FitOptions.of` a fit config)."""

    def __init__(self, model: BodyModel, space: PoseSpace, options: FitOptions) -> None:
        self.model = model
        self.space = space.to(model.device, model.dtype)
        self.options = options
        o = options.optimizer
        self.calls = RowCalls(o.frames_per_call, model.device, o.max_frames_per_call)
        self.starter = Starter(model, self.space, options.init.side_view_cos, self.calls)
        self.objective = Objective(model, self.space, options.data.rho)
        self.driver = Driver(self.objective, self.calls, options.optimizer.lbfgs())
        self.schedule = list(options.schedule)
        self.video_schedule = list(options.video.schedule)
        self.hypotheses = [HYPOTHESES.create(name) for name in options.init.hypotheses]
        self.supported = set(model.keypoint_sets())
        self._initialiser: Initialiser | None = None
        self._lifter: TemporalLifter | None = None
        self._hook: IterationHook | None = None

    def initialiser(self) -> "Initialiser":
        """The learned start (`init.initialiser`, default the shipped one), loaded on first use."""
        if self._initialiser is None:
            self._initialiser = load_initialiser(self.options.init.initialiser, self.device).to(self.dtype)
        return self._initialiser

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def evaluations(self) -> int:
        """Batched objective calls so far (for benchmarks)."""
        return self.driver.evaluations

    def on_iteration(self, hook: IterationHook | None) -> None:
        """Call `hook(stage, iteration, rows, terms)` after every L-BFGS iteration (None: stop). In
        `fit_frames` rows are the indices of the rows' frames in its `frames` (a frame appears once
        per start hypothesis); in `fit_sequence` the one row is 0."""
        self._hook = hook

    def problem(self, rows: list[list[FrameTargets | None]], frame_index: list[list[int]] | None = None) -> Problem:
        layout = Layout.of([f for r in rows for f in r if f is not None], self.supported, self.device)
        return build_problem(
            rows, layout, self.model, self.options.data.reference_size, frame_index, self.options.video.max_gap
        )

    def fit_frames(
        self, frames: list[FrameTargets], shape: torch.Tensor | None = None, hypotheses: list[Hypothesis] | None = None
    ) -> list[FitResult]:
        """Fit independent frames in one batch.

        shape (S,): hold every frame at this shape. hypotheses: start generators
        (default: `init.hypotheses`); each frame keeps the start whose fit ends lowest.
        Frames are batched with the frames that have the same keypoint sets: a batch's
        layout (the points every row carries) then does not depend on the other frames,
        and with `optimizer.frames_per_call` neither does any frame's arithmetic.
        """
        gens = self.hypotheses if hypotheses is None else hypotheses
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, f in enumerate(frames):
            groups.setdefault(tuple(Layout.sets_of([f], self.supported)), []).append(i)
        results: list[FitResult | None] = [None] * len(frames)
        for members in groups.values():
            for i, r in zip(members, self._fit_batch([frames[i] for i in members], members, shape, gens)):
                results[i] = r
        return results

    def _fit_batch(
        self, frames: list[FrameTargets], index: list[int], shape: torch.Tensor | None, gens: list[Hypothesis]
    ) -> list[FitResult]:
        """`fit_frames` of frames with the same keypoint sets (`index`: their places in its list)."""
        base = self.problem([[f] for f in frames])
        learned = LearnedStart(self.initialiser, base, self.calls.rows_per_call(base))
        view = self.starter.torso_view(base)
        ctx = StartContext(base, view, self.space, learned, takes_learned_shape(self.model), index)
        rows = Rows.expand(gens, ctx)
        # on the CPU, where the hook's rows are moved
        frame_of = torch.as_tensor(index, device="cpu")[torch.as_tensor(rows.frame, device="cpu")]

        def hook(stage: str, iteration: int, r: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
            self._hook(stage, iteration, frame_of[r.cpu()], terms)  # rows -> their frames' places in fit_frames

        frame = torch.as_tensor(rows.frame, device=self.device)
        problem = base.take(frame)
        v = self.starter.start(problem, rows.blocks, view.take(frame), shape)
        hold = (SHAPE,) if shape is not None else ()
        hook = hook if self._hook is not None else None
        cut = self._prune_at()
        start = self.starter.anchor(problem, v, rows.blocks)
        run = self.driver.run(problem, v, start, self.schedule[:cut], hold, hook)
        if cut < len(self.schedule):  # each frame goes on with its lowest starts only
            keep = rows.prune(run.losses[:, 0, -1], self.options.init.keep)
            rows, frame_of, run = rows.take(keep), frame_of[torch.as_tensor(keep, device="cpu")], run.take(keep)
            problem = problem.take(torch.as_tensor(keep, device=self.device))
            run = run.then(self.driver.run(problem, run.v, run.start, self.schedule[cut:], hold, hook))
        best, losses = rows.choose(run.losses[:, 0, -1], len(frames), len(gens))
        results = self._results(run, problem, best, self.schedule[-1])
        names = tuple(g.name for g in gens)
        for r, row, frame_losses in zip(results, best, losses):
            r.hypothesis, r.hypothesis_losses, r.hypothesis_names = int(rows.hypothesis[row]), frame_losses, names
        return results

    def _prune_at(self) -> int:
        """How many stages of the schedule every start runs before pruning (`init.keep`, `init.prune_after`)."""
        if self.options.init.keep is None:
            return len(self.schedule)
        return [s.name for s in self.schedule].index(self.options.init.prune_after) + 1

    def fit_sequence(
        self,
        frames: list[FrameTargets],
        frame_index: list[int],
        starts: list[dict[str, torch.Tensor] | None],
        frozen: list[bool],
        shape: torch.Tensor,
        anchor: torch.Tensor | None = None,
    ) -> list[FitResult]:
        """Refine consecutive frames jointly (`video.schedule`, temporal terms) at one `shape` (S,).

        starts: each frame's variables (as `variables` gives them), None for the default start;
        frames marked `frozen` are held at their start. anchor (T, 21, 3): the body poses whose
        skeletons `start_skeleton` holds the frames near (default: their starts'). Returns the
        results of the other frames.
        """
        problem = self.problem([frames], [frame_index])
        problem.frozen[0] = torch.as_tensor(frozen, device=self.device)
        v = self.starter.start(problem, shape=shape)
        for i, start in enumerate(starts):
            for k, x in (start or {}).items():
                if k in v and not BY_NAME[k].per_row:
                    v[k][0, i] = x.to(v[k])
        blocks = (
            [] if anchor is None else [(torch.zeros(1, dtype=torch.long, device=self.device), Start({}, anchor[None]))]
        )
        start = self.starter.anchor(problem, v, blocks)
        run = self.driver.run(problem, v, start, self.video_schedule, (SHAPE,), self._hook)
        sigma = self.options.video.output_smoothing
        if sigma > 0:
            smoothed = smooth_motion(run.v, problem.link, problem.frozen, sigma)
            run = replace(run, v=smoothed)
        return self._results(run, problem, np.zeros(1, np.int64), self.video_schedule[-1])

    def lifter(self) -> TemporalLifter:
        """The temporal lifter (`video.lifter`, default the shipped one), loaded on first use; it runs on the CPU."""
        if self._lifter is None:
            self._lifter = load_lifter(self.options.video.lifter)
        return self._lifter

    def lift(self, frames: list[FrameTargets], frame_index: list[int]) -> Lift:
        """The temporal lifter's reading of one person's frames (ascending frame numbers; the frames
        between them are read as unseen) from their most common body keypoint set."""
        sets = Counter(s for f in frames for s in f.points if s in BODY_SETS)
        if not sets:
            raise ValueError(f"the temporal lifter reads {', '.join(BODY_SETS)} keypoints; this track has none")
        name = sets.most_common(1)[0][0]
        cpu = torch.device("cpu")  # the lifter's inputs, filled frame by frame
        first, rows = frame_index[0], torch.as_tensor(frame_index, device=cpu) - frame_index[0]
        t, k = frame_index[-1] - first + 1, len(keypoint_names(name))
        points = torch.zeros(t, k, 3, device=cpu)
        focal = torch.tensor([frames[0].focal] * t, device=cpu)
        center = torch.tensor([frames[0].center] * t, device=cpu)
        for j, f in zip(rows, frames):
            focal[j], center[j] = torch.tensor(f.focal, device=cpu), torch.tensor(f.center, device=cpu)
            if name in f.points:
                points[j] = torch.as_tensor(f.points[name][0], device=cpu)
        sigma = self.options.video.lift_smoothing
        out = lift(self.lifter(), points[..., :2], points[..., 2], name, focal, center, sigma)
        kw = dict(device=self.device, dtype=self.dtype)
        return Lift(**{k: (x if k == "shape" else x[rows]).to(**kw) for k, x in vars(out).items()})

    def variables(self, params: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """One frame's optimisation variables from its saved parameters (inverse of the results)."""
        return to_variables(params, self.space.is_latent, self.device, self.dtype)

    def _results(self, run: RunResult, problem: Problem, rows: np.ndarray, last: Stage) -> list[FitResult]:
        """Per-frame results of the chosen `rows` (their non-frozen frames): parameters, final terms, projections."""
        pick = torch.as_tensor(rows, device=self.device)
        v = {k: x[pick] for k, x in run.v.items()}
        start = run.start.take(pick)
        problem = problem.take(pick)
        n = problem.rows * problem.frames

        def final(i: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
            """Rows `i`'s decoded variables, final terms and projections, (rows, frames, ...) each."""
            part = problem.take(i)
            e = self.objective.evaluation({k: x[i] for k, x in v.items()}, start.take(i), part)
            m = len(i) * part.frames
            focal, center = part.focal.reshape(m, 2), part.center.reshape(m, 2)
            per_row = lambda x: x.unflatten(0, (len(i), part.frames))  # noqa: E731
            return {
                "flat": {k: per_row(x) for k, x in e.flat.items()},
                "body_pose": per_row(e.body_pose),
                "terms": {k: x.reshape(len(i), part.frames) for k, x in self.objective.terms(e, last.weights).items()},
                "projected": {s: per_row(project(e.body.keypoints(s), focal, center)) for s in part.layout.sets},
            }

        # In the fixed calls of the fit (`RowCalls`), so the saved values do not depend on the batch either.
        with torch.no_grad():
            done = self.calls.over(problem, final)
        flat = {k: x.flatten(0, 1) for k, x in done["flat"].items()}
        params = to_params(flat, done["body_pose"].flatten(0, 1), self.space.is_latent)
        terms = {k: x.reshape(-1).cpu().numpy() for k, x in done["terms"].items()}
        proj = {
            s: x.flatten(0, 1)
            .masked_fill(~self.model.points.mask(s).to(self.device)[None, :, None], float("nan"))
            .cpu()
            .numpy()
            for s, x in done["projected"].items()
        }
        start_orient = start.variables["global_orient"].flatten(0, 1).cpu().numpy()
        results = []
        for i in range(n):
            r, j = divmod(i, problem.frames)
            if bool(problem.frozen[r, j]):
                continue
            results.append(
                FitResult(
                    params={k: x[i] for k, x in params.items()},
                    stage_losses=run.losses[rows[r], j],
                    iterations=run.iterations[rows[r]],
                    terms={k: float(x[i]) for k, x in terms.items()},
                    start_orient=start_orient[i],
                    projected={s: p[i] for s, p in proj.items()},
                )
            )
        return results
