"""One tracked person of a video or frame sequence, fitted window by window.

A `TrackFit` holds one track's fittable frames in order and fits them in steps, each giving
the results of some frames (frame index -> FitResult); `next_frame` is the first frame it
has not settled yet, so a caller interleaving several tracks knows which frames are final.

- `SequenceFit`: one shape for the person (from a finished frame, else the mean of the
  converged independent fits of `video.shape_frames` frames spread over the track), then
  overlapping windows of `video.window` frames: the window's new frames are fitted on their
  own (one batch, warm-started from the last fitted frame), then the window is refined as one
  problem with the temporal terms (`Fitter.fit_sequence`), the first `video.overlap` frames
  held at the previous window's results. A frame that diverged is fitted again where the
  next window overlaps it. With `video.start: lifter` the temporal lifter reads the whole
  track first (`Fitter.lift`); its reading of each frame is that frame's start and its anchor
  (the skeleton `start_skeleton` holds it near: in its own fit, and in the window's where
  `video.schedule` weights it), and on a model that takes its shape (Anny) its shape is the person's.
- `StillsFit`: a short track's frames as independent stills (own shape, no temporal terms).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Callable

import numpy as np
import torch

from fitting.fitter import FitResult, Fitter
from fitting.hypotheses import GivenStart, LiftedStart, takes_learned_shape
from fitting.targets import FrameTargets
from prior.initialiser.temporal_lifter import Lift

# A finished frame's saved parameters (None when the frame is not finished for this track).
Saved = Callable[[int], dict[str, np.ndarray] | None]


class TrackFit(ABC):
    """Frames of one track, fitted in steps."""

    def __init__(self, frames: list[tuple[int, FrameTargets]], fitter: Fitter, saved: Saved) -> None:
        self.frames = frames  # (frame index, targets), by frame index
        self.fitter = fitter
        self.video = fitter.options.video
        self.known: dict[int, dict[str, torch.Tensor]] = {}  # position in `frames` -> variables of a fitted frame
        for p, (index, _) in enumerate(frames):
            params = saved(index)
            if params is not None:
                self.known[p] = fitter.variables(params)
        self.start = 0  # first position not settled for good

    def remaining(self) -> list[int]:
        """The frame indices this track may still fit."""
        return [i for p, (i, _) in enumerate(self.frames) if p >= self.start and p not in self.known]

    @property
    def next_frame(self) -> float:
        """The first frame index this track may still fit (inf when it is finished)."""
        return float(next(iter(self.remaining()), math.inf))

    @abstractmethod
    def step(self) -> dict[int, FitResult]:
        """Fit the next frames: their results by frame index."""

    def finish(self) -> None:
        """Give up the rest (after an error): nothing more to fit."""
        self.start = len(self.frames)


class StillsFit(TrackFit):
    """All of a short track's unfitted frames as independent stills, in one step."""

    def step(self) -> dict[int, FitResult]:
        new = [p for p in range(self.start, len(self.frames)) if p not in self.known]
        self.finish()
        results = self.fitter.fit_frames([self.frames[p][1] for p in new])
        return {self.frames[p][0]: r for p, r in zip(new, results)}


class SequenceFit(TrackFit):
    """One shape, then overlapping windows refined with the temporal terms (module docstring)."""

    def __init__(self, frames: list[tuple[int, FrameTargets]], fitter: Fitter, saved: Saved) -> None:
        super().__init__(frames, fitter, saved)
        self.shape: torch.Tensor | None = None
        self.lifted: Lift | None = None  # `video.start: lifter`: the lifter's reading of the whole track

    def _shape(self) -> torch.Tensor:
        """From a finished frame, else the lifter's (`takes_learned_shape`), else the mean of the converged fits of
        frames spread over the track."""
        if self.known:
            return self.known[min(self.known)]["shape"].reshape(-1)
        if self.lifted is not None and takes_learned_shape(self.fitter.model):
            return self.lifted.shape
        n = min(self.video.shape_frames, len(self.frames))
        picks = np.unique(np.linspace(0, len(self.frames) - 1, n).round().astype(int))
        results = [r for r in self.fitter.fit_frames([self.frames[p][1] for p in picks]) if r.is_finite()]
        if not results:
            raise ValueError("no shape frame converged")
        mean = np.mean([r.params["shape"] for r in results], 0)
        return torch.as_tensor(mean, device=self.fitter.device, dtype=self.fitter.dtype)

    def step(self) -> dict[int, FitResult]:
        """The next window: its new frames' results."""
        if self.video.start == "lifter" and self.lifted is None:
            self.lifted = self.fitter.lift([f for _, f in self.frames], [i for i, _ in self.frames])
        if self.shape is None:
            self.shape = self._shape()
        size, stride = self.video.window, self.video.window - self.video.overlap
        positions = list(range(self.start, min(self.start + size, len(self.frames))))
        new = [p for p in positions if p not in self.known]
        out: dict[int, FitResult] = {}
        if new:
            fitter, known = self.fitter, self.known
            lifted, anchor = self.lifted, None
            if lifted is not None:
                starts = [LiftedStart(lifted.global_orient[new], lifted.body_pose[new], self.shape)]
                anchor = lifted.body_pose[positions]
            else:
                before = [p for p in positions if p in known and p < new[0]]
                starts = [GivenStart(known[before[-1]])] if before else None
            single = fitter.fit_frames([self.frames[p][1] for p in new], shape=self.shape, hypotheses=starts)
            fitted = {**known, **{p: fitter.variables(r.params) for p, r in zip(new, single) if r.is_finite()}}
            refined = fitter.fit_sequence(
                [self.frames[p][1] for p in positions],
                [self.frames[p][0] for p in positions],
                [fitted.get(p) for p in positions],
                [p not in new for p in positions],
                self.shape,
                anchor,
            )
            for p, r, first in zip(new, refined, single):
                r = r.after(first)
                if r.is_finite():  # a diverged frame is fitted again, not held, where the next window overlaps it
                    known[p] = fitter.variables(r.params)
                out[self.frames[p][0]] = r
        if positions[-1] == len(self.frames) - 1:
            self.finish()
        else:
            self.start += stride
            self.known = {p: x for p, x in self.known.items() if p >= self.start}
        return out
