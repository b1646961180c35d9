"""Batch-invariant evaluation: a row's result must not depend on how many rows share its call.

CPU kernels (matrix products above all) may choose their blocking from the number of rows
in a call, so one row's result can round differently with the size of its batch; its
position in the batch does not matter. The late fitting stages amplify such 1e-7
differences into different fits, so the fitter evaluates rows through `in_chunks` with a
chunk size (`optimizer.frames_per_call`): every call sees the same number of rows, the last
one padded with copies of its first row, and a frame's arithmetic is the same in any batch.

Where the matrix products round a row alike for every row count from some floor on
(`uniform_rows`, probed once per device and dtype), padding to that floor is enough: a
call of any size above it gives every row the rounding a fixed chunk would. On a 2-core
AVX-512 machine with MKL (torch 2.13) 1, 2 and 3 rows round differently and every count
from 4 rounds alike, for the products and for the whole fitting objective (VPoser decoder,
Anny, loss and gradient; tests/test_fitting_rowwise.py); an environment whose products
change rounding at larger counts keeps the fixed chunks.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, TypeVar

import torch

Out = TypeVar("Out", torch.Tensor, tuple, dict)

# Row counts probed by `uniform_rows`: every count up to 17, then counts about the powers of two.
PROBE_LARGEST = 512
PROBE_ROWS = (*range(1, 18), *(n + d for n in (32, 64, 128, 256) for d in (-1, 0, 1)), 511, PROBE_LARGEST)
# A matrix product like the networks' layers (inputs -> outputs), and its backward (outputs -> inputs).
PROBE_SHAPE = (32, 256)
PROBE_DTYPES = (torch.float32, torch.float64)


def in_chunks(fn: Callable[[torch.Tensor], Out], n: int, rows: int, device: torch.device | str = "cpu") -> Out:
    """fn(index) over the indices 0..n-1 with batch-invariant rounding. rows <= 0: one call with
    all n. Otherwise, where the device's products round alike from `uniform_rows` rows on (at most
    `rows`), calls of at most PROBE_LARGEST indices padded to that floor; elsewhere calls of
    exactly `rows` indices. Padding repeats a call's first index. `fn` returns a tensor, a tuple
    or a dict of tensors whose first dimension follows the indices; the results of the calls are
    joined and the padding dropped."""
    device = torch.device(device)
    index = torch.arange(n, device=device)
    if rows <= 0 or n == 0:
        return fn(index)
    floor = uniform_rows(device)
    size, least = (PROBE_LARGEST, floor) if floor is not None and floor <= rows else (rows, rows)
    parts = []
    for start in range(0, n, size):
        idx = index[start : start + size]
        if len(idx) < least:
            idx = torch.cat([idx, idx[:1].expand(least - len(idx))])
        parts.append(fn(idx))
    return _join(parts, n)


@lru_cache(maxsize=None)
def uniform_rows(device: torch.device) -> int | None:
    """The smallest row count from which every probed count (PROBE_ROWS) gives the first row of
    a PROBE_SHAPE product the same bits in float32 and float64, forward (x @ W^T) and as in a
    backward (y @ W); None when the two largest counts already differ."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    floor = 1
    k, m = PROBE_SHAPE
    for dtype in PROBE_DTYPES:
        x = torch.randn(PROBE_LARGEST, k, generator=generator, dtype=dtype).to(device)
        w = torch.randn(m, k, generator=generator, dtype=dtype).to(device) / k**0.5
        first = torch.stack([_first_row(x, w, n) for n in PROBE_ROWS])
        same = (first == first[-1]).all(-1)
        if not same[-2]:
            return None
        floor = max(floor, PROBE_ROWS[int((~same).nonzero().max()) + 1] if not same.all() else 1)
    return floor


def _first_row(x: torch.Tensor, w: torch.Tensor, n: int) -> torch.Tensor:
    """Row 0 of the product of x's first n rows with w^T, and of the result with w (a backward)."""
    y = torch.nn.functional.linear(x[:n], w)
    return torch.cat([y[0], (y @ w)[0]])


def _join(parts: list, n: int):
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)[:n]
    if isinstance(first, tuple):
        return tuple(_join([p[i] for p in parts], n) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _join([p[k] for p in parts], n) for k in first}
    raise TypeError(f"in_chunks: fn returned {type(first).__name__}; expected a tensor, tuple or dict of tensors")
