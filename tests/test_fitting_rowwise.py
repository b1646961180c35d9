"""Batch-invariant evaluation (fitting.rowwise) on the path the fitter takes: the fitting objective
gives a frame the same bits alone and at any position of batches of any size, in the fixed chunks and
in the variable calls (multiples of the chunk) that the probe allows, and without the chunks it does
not; a fit is the same bits alone and in a batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fitting.config import load_options
from fitting.driver import _Packer
from fitting.fitter import Fitter
from fitting.optimize import _Counted, value_and_grad
from fitting.rowwise import call_sizes_agree, in_chunks
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


def test_variable_calls_are_full_calls_then_the_rest_padded_to_a_multiple_of_the_unit():
    sizes = []

    def record(i: torch.Tensor) -> torch.Tensor:
        sizes.append(len(i))
        return i * 2

    for n, expected in ((5, [16]), (16, [16]), (17, [32]), (112, [112]), (130, [112, 32]), (250, [112, 112, 32])):
        sizes.clear()
        out = in_chunks(record, n, 16, "cpu", 112)
        assert sizes == expected and torch.equal(out, torch.arange(n) * 2), n
    sizes.clear()
    in_chunks(record, 40, 16, "cpu", 16)  # max = unit: today's fixed chunks
    assert sizes == [16, 16, 16]


VARIABLE_LAYOUTS = ((17, (0, 16)), (40, (5, 39)), (100, (0, 50, 99)), (130, (3, 111, 112, 129)), (250, (0, 200, 249)))


def test_variable_calls_give_a_frame_the_same_bits_as_alone(anchored_objective):
    """Calls of 16-112 rows (as many as the probe allows here, 112 on the CPU this was written on)
    give frame 0 of the anchored stage the same value and gradient bits as alone, at several
    positions of batches of 17 to 250 rows (full calls of the max, then the rest padded)."""
    objective, x, per_call = anchored_objective
    allowed = call_sizes_agree(lambda i: value_and_grad(objective, x[i], i), len(x), per_call, 112)
    assert allowed % per_call == 0 and per_call <= allowed <= 112
    f0, g0 = _frame_zero_at(objective, x, per_call, 1, 0)
    n = len(x)
    for batch, positions in VARIABLE_LAYOUTS:
        for at in positions:
            others = torch.arange(1, batch) % (n - 1) + 1  # frames 1..n-1, cycled
            order = torch.cat([others[:at], torch.zeros(1, dtype=torch.long), others[at:]])
            f, g = _Counted(objective, per_call, allowed)(x[order], order)
            assert torch.equal(f[at], f0) and torch.equal(g[at], g0), (batch, at, allowed)


def test_probe_falls_back_where_call_sizes_round_differently(anchored_objective):
    """An objective whose value depends on its call's size (scaled by 1 + 1e-6 x rows): the unit is
    kept; depending on it only above 3 units: calls of up to 3 units are kept."""
    objective, x, per_call = anchored_objective

    def probe(shift):
        def fn(i: torch.Tensor):
            f, g = value_and_grad(objective, x[i], i)
            return f * (1 + shift(len(i))), g

        return call_sizes_agree(fn, len(x), per_call, 7 * per_call)

    assert probe(lambda size: 0.0) == 7 * per_call  # on this CPU; see the test above
    assert probe(lambda size: 1e-6 * size) == per_call
    assert probe(lambda size: 1e-3 * (size > 3 * per_call)) == 3 * per_call
    # A batch with fewer rows than the probe's calls is cycled.
    few = call_sizes_agree(lambda i: value_and_grad(objective, x[i], i), 5, per_call, 3 * per_call)
    assert few % per_call == 0


def test_a_fit_is_the_same_bits_alone_and_in_a_batch_of_variable_calls(anny_body):
    """`Fitter.fit_frames` of two frames alone and among 24 (one call of 32 rows per evaluation where
    the probe allows it): bit-identical saved parameters (the decoded body pose included: the results
    pass runs in the fixed calls too), final terms, projections and iterations, and the probe's
    verdicts are cached per stage kind."""
    import prior

    fitter = Fitter(anny_body, VPoserSpace(prior.load()), load_options())
    rng = np.random.default_rng(4)
    frames = render_views(anny_body, rng.normal(0, 0.2, (24, 21, 3)).astype(np.float32), None, rng).frames
    batch = fitter.fit_frames(frames)
    # the probe checked the sizes 24 rows can use (up to 32), not the 256 allowed at most
    verdicts = fitter.calls.verdicts.values()
    assert verdicts and all(a % 16 == 0 and 16 <= a <= probed == 32 for a, probed in verdicts)
    for at in (0, 23):
        (alone,) = fitter.fit_frames([frames[at]])
        assert np.array_equal(alone.iterations, batch[at].iterations), at
        for k, p in alone.params.items():
            assert np.array_equal(p, batch[at].params[k]), (at, k)
        assert alone.terms == batch[at].terms, at
        for s, p in alone.projected.items():
            assert np.array_equal(p, batch[at].projected[s], equal_nan=True), (at, s)
