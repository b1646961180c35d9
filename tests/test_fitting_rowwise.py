"""Batch-invariant evaluation (fitting.rowwise): how calls are cut and padded, and that the fitting
objective gives a row the same bits in calls of any size on the path the fitter takes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fitting import rowwise
from fitting.config import load_config
from fitting.engine import _Packer
from fitting.fitter import Fitter
from fitting.optimize import _Counted
from fitting.priors import VPoserSpace
from fitting.stages import schedule
from fitting.synthetic import render_views


def _calls(n: int, rows: int) -> tuple[list[int], torch.Tensor]:
    """The sizes of in_chunks' calls for n indices, and the joined result of fn = identity."""
    sizes = []

    def fn(index: torch.Tensor) -> torch.Tensor:
        sizes.append(len(index))
        return index * 10

    return sizes, rowwise.in_chunks(fn, n, rows)


def test_calls_are_padded_to_the_floor_where_products_round_alike_above_it(monkeypatch):
    monkeypatch.setattr(rowwise, "uniform_rows", lambda device: 4)
    for n, sizes in ((1, [4]), (3, [4]), (16, [16]), (300, [300]), (600, [512, 88])):
        got, out = _calls(n, 16)
        assert got == sizes and torch.equal(out, torch.arange(n) * 10)
    assert _calls(5, 0)[0] == [5]


def test_fixed_chunks_where_products_round_differently_at_large_counts(monkeypatch):
    monkeypatch.setattr(rowwise, "uniform_rows", lambda device: None)
    got, out = _calls(40, 16)
    assert got == [16, 16, 16] and torch.equal(out, torch.arange(40) * 10)
    monkeypatch.setattr(rowwise, "uniform_rows", lambda device: 32)  # a floor above the chunk: chunks
    assert _calls(40, 16)[0] == [16, 16, 16]


def test_uniform_rows_is_at_most_the_largest_probe():
    floor = rowwise.uniform_rows(torch.device("cpu"))
    assert floor is None or 1 <= floor <= rowwise.PROBE_LARGEST


def test_objective_gives_a_row_the_same_bits_in_calls_of_any_size(anny_body):
    """Value and gradient of row 0 of the anchored stage's objective (VPoser decoder, Anny's keypoints,
    every term) through the optimiser's calls (optimizer.frames_per_call=16), alone and among 2-39
    other frames: equal bits."""
    import prior

    cfg = load_config(None, [])
    fitter = Fitter(anny_body, VPoserSpace(prior.load()), cfg)
    rng = np.random.default_rng(0)
    frames = render_views(anny_body, rng.normal(0, 0.2, (40, 21, 3)).astype(np.float32), None, rng).frames
    engine = fitter.engine
    problem = fitter.problem([[f] for f in frames])
    v = engine.start(problem)
    start = engine.start_values(problem, v)
    stage = schedule(cfg, ["anchored1"])[0]
    packer = _Packer(v, list(stage.free))
    x = packer.pack(v) + 0.05 * torch.randn(40, sum(packer.sizes), generator=torch.Generator().manual_seed(0))

    def objective(xi: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return sum(engine.row_terms(v, start, problem, rows, stage.weights, packer.unpack(xi)).values()).sum(1)

    counted = _Counted(objective, engine.rows_per_call(problem))
    results = [counted(x[:n], torch.arange(n)) for n in (1, 2, 3, 5, 16, 17, 40)]
    for f, g in results[1:]:
        assert torch.equal(f[0], results[0][0][0]) and torch.equal(g[0], results[0][1][0])


@pytest.mark.parametrize("n", [1, 7])
def test_in_chunks_joins_tuples_and_dicts(n):
    out = rowwise.in_chunks(lambda i: (i, {"a": i * 2}), n, 16)
    assert torch.equal(out[0], torch.arange(n)) and torch.equal(out[1]["a"], torch.arange(n) * 2)
