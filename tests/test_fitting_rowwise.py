"""Batch-invariant evaluation (fitting.rowwise) on the path the fitter takes: the fitting objective
gives a frame the same bits alone and at any position of batches of any size, and without the fixed
chunks it does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fitting.config import load_options
from fitting.driver import _Packer
from fitting.fitter import Fitter
from fitting.optimize import _Counted
from fitting.synthetic import render_views
from prior.pose_spaces import VPoserSpace

LAYOUTS = ((1, 0), (5, 4), (16, 15), (17, 16), (20, 19), (40, 31))  # (batch, the frame's position)


@pytest.fixture(scope="module")
def anchored_objective(anny_body):
    """The anchored stage's objective over 40 frames near their start, and its variables x (40, D)."""
    import prior

    options = load_options()
    fitter = Fitter(anny_body, VPoserSpace(prior.load()), options)
    rng = np.random.default_rng(0)
    frames = render_views(anny_body, rng.normal(0, 0.2, (40, 21, 3)).astype(np.float32), None, rng).frames
    problem = fitter.problem([[f] for f in frames])
    v = fitter.starter.start(problem)
    start = fitter.starter.anchor(problem, v)
    stage = next(s for s in options.schedule if s.name == "anchored1")
    packer = _Packer(v, list(stage.free))
    x = packer.pack(v) + 0.05 * torch.randn(40, sum(packer.sizes), generator=torch.Generator().manual_seed(0))

    def objective(xi: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        terms = fitter.objective.row_terms(v, start, problem, rows, stage.weights, packer.unpack(xi))
        return sum(terms.values()).sum(1)

    return objective, x, fitter.calls.rows_per_call(problem)


def _frame_zero_at(objective, x: torch.Tensor, per_call: int, batch: int, at: int):
    """Value and gradient of frame 0 evaluated at position `at` of a batch of `batch` frames."""
    order = torch.cat([torch.arange(1, at + 1), torch.zeros(1, dtype=torch.long), torch.arange(at + 1, batch)])
    f, g = _Counted(objective, per_call)(x[order], order)
    return f[at], g[at]


def test_objective_gives_a_frame_the_same_bits_at_any_position_of_any_batch(anchored_objective):
    """VPoser decoder, Anny's keypoints and every term of the anchored stage, through the optimiser's
    calls (optimizer.frames_per_call=16)."""
    objective, x, per_call = anchored_objective
    f0, g0 = _frame_zero_at(objective, x, per_call, 1, 0)
    for batch, at in LAYOUTS[1:]:
        f, g = _frame_zero_at(objective, x, per_call, batch, at)
        assert torch.equal(f, f0) and torch.equal(g, g0), (batch, at)


def test_one_call_per_evaluation_is_not_batch_invariant(anchored_objective):
    """Why the chunks are fixed: calls of the batch's own size round the same frame differently
    (here alone vs. the last rows of 20, or 1-3 rows vs. more)."""
    objective, x, _ = anchored_objective
    f0, g0 = _frame_zero_at(objective, x, 0, 1, 0)
    same = [
        torch.equal(f0, f) and torch.equal(g0, g) for f, g in (_frame_zero_at(objective, x, 0, *b) for b in LAYOUTS)
    ]
    assert not all(same[1:])
