"""Batch-invariant evaluation: every call of the body model and networks sees the same number of rows.

CPU kernels (GEMMs above all) choose their blocking from the number of rows in a call,
so one row's result rounds differently with the size of its batch; its position in the
batch does not matter. Measured on the fitting objective (VPoser decoder, Anny, loss and
gradient, 2 threads): 1, 2, 9-15, 16-127 and 128-255 rows gave five different roundings
of the same row with Anny's own skeleton code (calls of 16-512 rows agree with
`body.anny_skeleton`'s on the CPU where it was measured, 1 and 2 threads). The late
fitting stages amplify such 1e-7 differences into different fits, so the fitter
evaluates rows in chunks of a fixed size (`optimizer.rows_per_call`), padding the last
chunk with copies of its first row: a frame's arithmetic is then the same in any batch
at any position. Calls of several units (`in_chunks`'s `max_rows`) are used only where
`call_sizes_agree` has seen them give every row the unit's bits (`fitting.driver`).
"""

from __future__ import annotations

from typing import Callable, TypeVar

import torch

Out = TypeVar("Out", torch.Tensor, tuple, dict)


def in_chunks(
    fn: Callable[[torch.Tensor], Out], n: int, rows: int, device: torch.device | str = "cpu", max_rows: int = 0
) -> Out:
    """fn(index) over the indices 0..n-1, called with exactly `rows` indices each time (the last
    call padded with repeats of its first index; rows <= 0: one call with all n). `fn` returns a
    tensor, a tuple or a dict of tensors whose first dimension follows the indices; the results of
    the calls are joined and the padding dropped.

    `max_rows` > `rows` (a multiple of it) allows calls of any multiple of `rows` up to `max_rows`:
    full calls of `max_rows`, then the rest padded (as above) up to a multiple of `rows`. Use it
    only where calls of those sizes are known to round a row as calls of `rows` do
    (`call_sizes_agree`)."""
    index = torch.arange(n, device=device)
    if rows <= 0 or n == 0:
        return fn(index)
    step = max_rows if max_rows > rows else rows
    parts = []
    for start in range(0, n, step):
        idx = index[start : start + step]
        size = -(-len(idx) // rows) * rows
        if len(idx) < size:
            idx = torch.cat([idx, idx[:1].expand(size - len(idx))])
        parts.append(fn(idx))
    return _join(parts, n)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors hold the same values bit for bit (NaNs included)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))


def call_sizes_agree(
    fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], n: int, rows: int, max_rows: int, device="cpu"
) -> int:
    """The largest call size (a multiple of `rows`, at most `max_rows`) up to which `fn` gives every
    row the same bits as calls of `rows` do: fn(index) is evaluated over `max_rows` indices (0..n-1
    cycled) in calls of `rows` (the reference) and in one call of each size s = 2 rows, 3 rows, ...,
    `max_rows` over the first s of them; the answer is the size below the first one whose outputs
    differ anywhere (`rows` when 2 rows already differ). A check on one input, not a proof: it guards
    against CPUs (or threads, kernels) whose rounding changes within that range."""
    if rows <= 0 or max_rows <= rows or n == 0:
        return max(rows, 0)
    index = torch.arange(max_rows, device=device) % n
    reference = in_chunks(lambda i: fn(index[i]), max_rows, rows, device)
    for size in range(2 * rows, max_rows + 1, rows):
        out = fn(index[:size])
        if not all(same_bits(o, r[:size]) for o, r in zip(out, reference)):
            return size - rows
    return max_rows


def _join(parts: list, n: int):
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts)[:n]
    if isinstance(first, tuple):
        return tuple(_join([p[i] for p in parts], n) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _join([p[k] for p in parts], n) for k in first}
    raise TypeError(f"in_chunks: fn returned {type(first).__name__}; expected a tensor, tuple or dict of tensors")
