"""The fitter's options as frozen dataclasses, parsed once from a loaded fit config (`FitOptions.of`).

`Fitter`, its parts and the track fitters take these, not the YAML tree; the run pipeline
(`fitting.pipeline`) keeps the whole config for what is not the fitter's (inputs, outputs, Ray).
Each field is the config key of the same name (configs/fit.yaml says what each does).
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from fitting.optimize import LbfgsOptions
from fitting.stages import Stage, parse_stage


@dataclass(frozen=True)
class DataOptions:
    """`data`: how residuals are measured."""

    reference_size: float  # a person's box diagonal is scaled to this
    rho: float  # Geman-McClure scale, in those units


@dataclass(frozen=True)
class InitOptions:
    """`init`: the start hypotheses and their pruning."""

    hypotheses: tuple[str, ...]
    keep: int | None  # starts each frame keeps after `prune_after` (None: all)
    prune_after: str | None
    side_view_cos: float
    initialiser: str | None  # checkpoint (None: the shipped one)


@dataclass(frozen=True)
class OptimizerOptions:
    """`optimizer`: the batched L-BFGS."""

    max_iter: int
    history_size: int
    rel_tolerance: float
    max_line_search: int
    frames_per_call: int
    max_frames_per_call: int = 0  # the L-BFGS objective's calls: multiples of frames_per_call up to this

    def lbfgs(self) -> LbfgsOptions:
        """The L-BFGS limits (a stage sets its own `max_iter`)."""
        return LbfgsOptions(
            history_size=self.history_size, rel_tolerance=self.rel_tolerance, max_line_search=self.max_line_search
        )


@dataclass(frozen=True)
class VideoOptions:
    """`video`: windows of a track, their refinement and the temporal lifter."""

    window: int
    overlap: int
    max_gap: int
    shape_frames: int
    start: str  # initialiser | lifter
    lifter: str | None  # checkpoint (None: the shipped one)
    lift_smoothing: float
    output_smoothing: float
    schedule: tuple[Stage, ...]


@dataclass(frozen=True)
class FitOptions:
    """Everything the fitter reads of a fit config."""

    data: DataOptions
    init: InitOptions
    optimizer: OptimizerOptions
    video: VideoOptions
    schedule: tuple[Stage, ...]  # the stages of an image's fit

    @staticmethod
    def of(cfg: DictConfig) -> "FitOptions":
        """The options of a config loaded and checked by `fitting.config.load_config`."""
        o, i, v = cfg.optimizer, cfg.init, cfg.video
        optimizer = OptimizerOptions(
            int(o.max_iter),
            int(o.history_size),
            float(o.rel_tolerance),
            int(o.max_line_search),
            int(o.frames_per_call),
            int(o.max_frames_per_call),
        )

        def stages(names: list[str]) -> tuple[Stage, ...]:
            return tuple(parse_stage(name, cfg.stages[name], optimizer.max_iter) for name in names)

        return FitOptions(
            data=DataOptions(float(cfg.data.reference_size), float(cfg.data.rho)),
            init=InitOptions(tuple(i.hypotheses), i.keep, i.prune_after, float(i.side_view_cos), i.initialiser),
            optimizer=optimizer,
            video=VideoOptions(
                int(v.window),
                int(v.overlap),
                int(v.max_gap),
                int(v.shape_frames),
                str(v.start),
                v.lifter,
                float(v.lift_smoothing),
                float(v.output_smoothing),
                stages(v.schedule),
            ),
            schedule=stages(cfg.schedule),
        )
