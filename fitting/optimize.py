"""Batched L-BFGS with a strong-Wolfe line search, one independent problem per row.

`minimize(fn, x0)` minimises B problems at once: `fn(x, rows)` returns the loss of
each row of `x` (rows are indices into the batch), and the gradient of their sum
is each row's own gradient because the problems share no variables. Unlike
`torch.optim.LBFGS` over the summed loss, every row keeps its own curvature
history, step length, line search and stopping test, so a row's result does not
depend on what else is in the batch, and rows that have converged drop out of
later evaluations. CPU kernels round a row's result differently with the number of
rows in a call (`fitting.rowwise`), so `LbfgsOptions.rows_per_call` > 0 evaluates the
objective in calls of exactly that many rows (or, with `max_rows_per_call`, of multiples of
it up to that many, where those are known to round alike) and makes each row's arithmetic,
not only its algorithm, independent of its batch. The algorithm is `torch.optim.LBFGS`'s (two-loop recursion,
first step scaled by 1/|g|_1, strong-Wolfe search with cubic interpolation),
vectorised over rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from fitting.rowwise import in_chunks

Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# Called after every iteration with (iteration, rows that took it (R,), their new x (R, D)).
Callback = Callable[[int, torch.Tensor, torch.Tensor], None]


@dataclass(frozen=True)
class LbfgsOptions:
    """Per-row limits: iterations, history, step, and the stopping tolerances."""

    max_iter: int = 30
    history_size: int = 10
    lr: float = 1.0
    rel_tolerance: float = 1e-6  # stop when |f_prev - f| <= rel_tolerance * max(|f_prev|, |f|, 1)
    tolerance_grad: float = 1e-7  # stop when max |grad| <= tolerance_grad
    max_line_search: int = 20
    c1: float = 1e-4
    c2: float = 0.9
    rows_per_call: int = 0  # > 0: evaluate the objective in calls of exactly this many rows (fitting.rowwise)
    max_rows_per_call: int = 0  # > rows_per_call: calls of any multiple of rows_per_call up to this (fitting.rowwise)


@dataclass
class MinimizeResult:
    x: torch.Tensor  # (B, D)
    loss: torch.Tensor  # (B,)
    iterations: torch.Tensor  # (B,) L-BFGS iterations each row took
    evaluations: int  # batched calls of the objective


def value_and_grad(fn: Objective, x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fn(x, rows) (R,) and its gradient (R, D) with respect to x, in one call."""
    with torch.enable_grad():
        xi = x.detach().requires_grad_(True)
        f = fn(xi, rows)
        (g,) = torch.autograd.grad(f.sum(), xi)
    return f.detach(), g.detach()


class _Counted:
    """The objective with gradients, counting batched calls."""

    def __init__(self, fn: Objective, rows_per_call: int, max_rows_per_call: int = 0) -> None:
        self.fn = fn
        self.rows_per_call = rows_per_call
        self.max_rows_per_call = max_rows_per_call
        self.calls = 0

    def __call__(self, x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        return in_chunks(
            lambda i: value_and_grad(self.fn, x[i], rows[i]),
            len(rows),
            self.rows_per_call,
            x.device,
            self.max_rows_per_call,
        )


def minimize(
    fn: Objective, x0: torch.Tensor, options: LbfgsOptions = LbfgsOptions(), callback: Callback | None = None
) -> MinimizeResult:
    """Minimise each row of `x0` (B, D) independently; see the module docstring.
    `callback` sees every iteration (e.g. to log the loss terms of the rows that moved)."""
    objective = _Counted(fn, options.rows_per_call, options.max_rows_per_call)
    x = x0.detach().clone()
    batch, dim = x.shape
    m = options.history_size
    every = torch.arange(batch, device=x.device)
    f, g = objective(x, every)
    hist_s = x.new_zeros(batch, m, dim)
    hist_y = x.new_zeros(batch, m, dim)
    hist_rho = x.new_zeros(batch, m)
    gamma = x.new_ones(batch)
    has_history = torch.zeros(batch, dtype=torch.bool, device=x.device)
    iterations = torch.zeros(batch, dtype=torch.long, device=x.device)
    active = g.abs().amax(-1) > options.tolerance_grad
    step = 0
    while active.any():
        step += 1
        rows = active.nonzero().flatten()
        d = _direction(-g[rows], hist_s[rows], hist_y[rows], hist_rho[rows], gamma[rows])
        gtd = (g[rows] * d).sum(-1)
        first = options.lr * torch.clamp(1.0 / g[rows].abs().sum(-1), max=1.0)
        t = torch.where(has_history[rows], torch.full_like(first, options.lr), first)
        t, f_new, g_new = _strong_wolfe(objective, rows, x[rows], f[rows], g[rows], d, gtd, t, options)
        s = t[:, None] * d
        y = g_new - g[rows]
        ys = (y * s).sum(-1)
        keep = ys > 1e-10
        if keep.any():
            kr = rows[keep]
            hist_s[kr] = torch.cat([hist_s[kr, 1:], s[keep, None]], 1)
            hist_y[kr] = torch.cat([hist_y[kr, 1:], y[keep, None]], 1)
            hist_rho[kr] = torch.cat([hist_rho[kr, 1:], (1.0 / ys[keep])[:, None]], 1)
            gamma[kr] = ys[keep] / (y[keep] * y[keep]).sum(-1)
            has_history[kr] = True
        f_old = f[rows]
        x[rows] = x[rows] + s
        f[rows], g[rows] = f_new, g_new
        iterations[rows] += 1
        scale = torch.maximum(torch.maximum(f_old.abs(), f_new.abs()), torch.ones_like(f_new))
        done = (
            (iterations[rows] >= options.max_iter)
            | ((f_old - f_new).abs() <= options.rel_tolerance * scale)
            | (g_new.abs().amax(-1) <= options.tolerance_grad)
            | (gtd > -1e-12)
            | (t == 0)
        )
        active[rows[done]] = False
        if callback is not None:
            callback(step, rows, x[rows])
    return MinimizeResult(x, f, iterations, objective.calls)


def _direction(
    q: torch.Tensor, s: torch.Tensor, y: torch.Tensor, rho: torch.Tensor, gamma: torch.Tensor
) -> torch.Tensor:
    """L-BFGS two-loop recursion per row; history is oldest-first, empty slots have rho 0."""
    m = s.shape[1]
    alpha = q.new_zeros(q.shape[0], m)
    for i in reversed(range(m)):
        alpha[:, i] = rho[:, i] * (s[:, i] * q).sum(-1)
        q = q - alpha[:, i, None] * y[:, i]
    r = q * gamma[:, None]
    for i in range(m):
        beta = rho[:, i] * (y[:, i] * r).sum(-1)
        r = r + s[:, i] * (alpha[:, i] - beta)[:, None]
    return r


def _cubic_min(t1, f1, g1, t2, f2, g2, lo, hi):
    """Minimiser of the cubic through (t1, f1, g1), (t2, f2, g2), clamped to [lo, hi]; the midpoint when it has none."""
    d1 = g1 + g2 - 3 * (f1 - f2) / (t1 - t2)
    d2 = (d1 * d1 - g1 * g2).clamp(min=0).sqrt()
    fwd = t2 - (t2 - t1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    bwd = t1 - (t1 - t2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    t = torch.where(t1 <= t2, fwd, bwd)
    ok = torch.isfinite(t) & (d1 * d1 - g1 * g2 >= 0)
    return torch.where(ok, torch.minimum(torch.maximum(t, lo), hi), (lo + hi) / 2)


_BRACKET, _ZOOM, _DONE = 0, 1, 2


def _strong_wolfe(
    objective: _Counted,
    rows: torch.Tensor,
    x: torch.Tensor,
    f0: torch.Tensor,
    g0: torch.Tensor,
    d: torch.Tensor,
    gtd0: torch.Tensor,
    t: torch.Tensor,
    o: LbfgsOptions,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row step length satisfying the strong Wolfe conditions (Nocedal & Wright, alg. 3.5-3.6).

    Every round evaluates the rows still searching at their trial step. Returns
    (step, loss, gradient) at the accepted point; step 0 where nothing better was found.
    """
    n = x.shape[0]
    phase = torch.full((n,), _BRACKET, dtype=torch.long, device=x.device)
    t_prev, f_prev, g_prev, gtd_prev = torch.zeros_like(t), f0.clone(), g0.clone(), gtd0.clone()
    # Zoom bracket: lo (best so far, with gradient) and hi.
    t_lo, f_lo, g_lo, gtd_lo = t_prev.clone(), f0.clone(), g0.clone(), gtd0.clone()
    t_hi, f_hi, gtd_hi = t_prev.clone(), f0.clone(), gtd0.clone()
    insufficient = torch.zeros(n, dtype=torch.bool, device=x.device)
    d_max = d.abs().amax(-1)
    for step in range(o.max_line_search):
        # Zoom rows whose bracket has collapsed stop at lo.
        collapsed = (phase == _ZOOM) & ((t_hi - t_lo).abs() * d_max < 1e-9)
        phase = torch.where(collapsed, torch.full_like(phase, _DONE), phase)
        # Zoom rows: next trial by cubic interpolation inside the bracket, kept off its ends.
        lo, hi = torch.minimum(t_lo, t_hi), torch.maximum(t_lo, t_hi)
        tz = _cubic_min(t_lo, f_lo, gtd_lo, t_hi, f_hi, gtd_hi, lo, hi)
        eps = 0.1 * (hi - lo)
        near = torch.minimum(hi - tz, tz - lo) < eps
        force = near & (insufficient | (tz >= hi) | (tz <= lo))
        tz = torch.where(force, torch.where((tz - hi).abs() < (tz - lo).abs(), hi - eps, lo + eps), tz)
        zoom = phase == _ZOOM
        insufficient = torch.where(zoom, near & ~force, insufficient)
        t = torch.where(zoom, tz, t)
        searching = phase != _DONE
        if not searching.any():
            break
        idx = searching.nonzero().flatten()
        fi, gi = objective(x[idx] + t[idx, None] * d[idx], rows[idx])
        f_new, g_new = f0.clone(), g0.clone()
        f_new[idx], g_new[idx] = fi, gi
        gtd_new = (g_new * d).sum(-1)
        armijo_fail = (f_new > f0 + o.c1 * t * gtd0) | ~torch.isfinite(f_new)
        curvature_ok = gtd_new.abs() <= -o.c2 * gtd0

        # Bracketing phase.
        b = phase == _BRACKET
        up = b & (armijo_fail | ((f_new >= f_prev) & (step > 0)))  # minimum lies in [prev, t]
        accept_b = b & ~up & curvature_ok
        down = b & ~up & ~accept_b & (gtd_new >= 0)  # minimum lies in [t, prev]
        extend = b & ~up & ~accept_b & ~down
        _assign(up, (t_lo, f_lo, g_lo, gtd_lo), (t_prev, f_prev, g_prev, gtd_prev))
        _assign(up, (t_hi, f_hi, gtd_hi), (t, f_new, gtd_new))
        _assign(down, (t_hi, f_hi, gtd_hi), (t_prev, f_prev, gtd_prev))
        _assign(down, (t_lo, f_lo, g_lo, gtd_lo), (t, f_new, g_new, gtd_new))
        _assign(accept_b, (t_lo, f_lo, g_lo, gtd_lo), (t, f_new, g_new, gtd_new))
        t_next = _cubic_min(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, t + 0.01 * (t - t_prev), t * 10)
        _assign(extend, (t_prev, f_prev, g_prev, gtd_prev), (t, f_new, g_new, gtd_new))
        # An extending row keeps its last point as "lo" in case the search ends here.
        _assign(extend, (t_lo, f_lo, g_lo, gtd_lo), (t, f_new, g_new, gtd_new))
        t = torch.where(extend, t_next, t)

        # Zoom phase.
        shrink = zoom & (armijo_fail | (f_new >= f_lo))
        accept_z = zoom & ~shrink & curvature_ok
        move_lo = zoom & ~shrink & ~accept_z
        flip = move_lo & (gtd_new * (t_hi - t_lo) >= 0)
        _assign(shrink, (t_hi, f_hi, gtd_hi), (t, f_new, gtd_new))
        _assign(flip, (t_hi, f_hi, gtd_hi), (t_lo, f_lo, gtd_lo))
        _assign(move_lo | accept_z, (t_lo, f_lo, g_lo, gtd_lo), (t, f_new, g_new, gtd_new))

        phase = torch.where(up | down, torch.full_like(phase, _ZOOM), phase)
        phase = torch.where(accept_b | accept_z, torch.full_like(phase, _DONE), phase)
    # Rows that ran out of evaluations take their best point (lo); lo never raises the loss.
    return t_lo, f_lo, g_lo


def _assign(mask: torch.Tensor, dst: tuple[torch.Tensor, ...], src: tuple[torch.Tensor, ...]) -> None:
    """dst[i][mask] = src[i][mask], in place (src read before any write)."""
    values = [s[mask].clone() for s in src]
    for dt, v in zip(dst, values):
        dt[mask] = v
