"""Batch-invariant evaluation: every call of the body model and networks sees the same number of rows.

CPU kernels (GEMMs above all) choose their blocking from the number of rows in a call,
so one row's result rounds differently with the size of its batch; its position in the
batch does not matter. Measured on the fitting objective (VPoser decoder, Anny, loss and
gradient, 2 threads): 1, 2, 9-15, 16-127 and 128-255 rows give five different roundings
of the same row. The late fitting stages amplify such 1e-7 differences into different
fits, so the fitter evaluates rows in chunks of a fixed size (`optimizer.rows_per_call`),
padding the last chunk with copies of its first row: a frame's arithmetic is then the
same in any batch at any position.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import torch

Out = TypeVar("Out", torch.Tensor, tuple, dict)


def in_chunks(fn: Callable[[torch.Tensor], Out], n: int, rows: int, device: torch.device | str = "cpu") -> Out:
    """fn(index) over the indices 0..n-1, called with exactly `rows` indices each time (the last
    call padded with repeats of its first index; rows <= 0: one call with all n). `fn` returns a
    tensor, a tuple or a dict of tensors whose first dimension follows the indices; the results of
    the calls are joined and the padding dropped."""
    index = torch.arange(n, device=device)
    if rows <= 0 or n == 0:
        return fn(index)
    parts = []
    for start in range(0, n, rows):
        idx = index[start : start + rows]
        if len(idx) < rows:
            idx = torch.cat([idx, idx[:1].expand(rows - len(idx))])
        parts.append(fn(idx))
    return _join(parts, n)


def _join(parts: list, n: int):
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)[:n]
    if isinstance(first, tuple):
        return tuple(_join([p[i] for p in parts], n) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _join([p[k] for p in parts], n) for k in first}
    raise TypeError(f"in_chunks: fn returned {type(first).__name__}; expected a tensor, tuple or dict of tensors")
