"""Batched L-BFGS with a strong-Wolfe line search, one independent problem per row.

`minimize(fn, x0)` minimises B problems at once: `fn(x, rows)` returns the loss of
each row of `x` (rows are indices into the batch), and the gradient of their sum
is each row's own gradient because the problems share no variables. Unlike
`torch.optim.LBFGS` over the summed loss, every row keeps its own curvature
history, step length, line search and stopping test, so a row's result does not
depend on what else is in the batch, and rows that have converged drop out of
later evaluations. Rows do not wait for each other either: a row whose line search
has accepted a step starts its next iteration while others still search, so every
call of the objective evaluates each running row once, at whatever point its own
iteration needs (a few rows' later line-search rounds no longer cost calls of
their own). CPU kernels round a row's result differently with the number of
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
    if options.max_line_search < 1:
        raise ValueError(f"max_line_search must be >= 1, got {options.max_line_search}")
    objective = _Counted(fn, options.rows_per_call, options.max_rows_per_call)
    x = x0.detach().clone()
    every = torch.arange(len(x), device=x.device)
    f, g = objective(x, every)
    state = _Rows(x, f, g, options)
    state.begin(every[g.abs().amax(-1) > options.tolerance_grad])
    while len(rows := state.searching.nonzero().flatten()):
        # Every row still searching takes its next trial step in this call, wherever its search is.
        f_new, g_new = objective(state.x[rows] + state.t[rows, None] * state.d[rows], rows)
        ended = state.advance(rows, f_new, g_new)
        if len(ended):
            done = state.finish(ended)
            if callback is not None:
                for k in state.iterations[ended].unique().tolist():
                    which = ended[state.iterations[ended] == k]
                    callback(k, which, state.x[which])
            state.begin(ended[~done])
    return MinimizeResult(state.x, state.f, state.iterations, objective.calls)


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

# Per-row line-search state (`_Rows`), (B, ...) tensors: the search direction, its slope at the
# iterate, the trial step and phase, the round, and the strong-Wolfe bracket (previous trial, lo, hi).
_SEARCH = (
    "d", "gtd0", "d_max", "t", "phase", "round", "insufficient",
    "t_prev", "f_prev", "g_prev", "gtd_prev", "t_lo", "f_lo", "g_lo", "gtd_lo", "t_hi", "f_hi", "gtd_hi",
)  # fmt: skip


class _Rows:
    """Every row's L-BFGS iterate, curvature history and line-search state. Rows move on their own:
    a row that accepts a step starts its next iteration while others are still searching, so each
    objective call evaluates every row that is still running once, wherever it is (a row's
    trajectory is the same as in lock-step iterations, in fewer calls)."""

    def __init__(self, x: torch.Tensor, f: torch.Tensor, g: torch.Tensor, options: LbfgsOptions) -> None:
        batch, dim = x.shape
        m, self.options = options.history_size, options
        self.x, self.f, self.g = x, f, g
        self.hist_s, self.hist_y = x.new_zeros(batch, m, dim), x.new_zeros(batch, m, dim)
        self.hist_rho, self.gamma = x.new_zeros(batch, m), x.new_ones(batch)
        self.has_history = torch.zeros(batch, dtype=torch.bool, device=x.device)
        self.iterations = torch.zeros(batch, dtype=torch.long, device=x.device)
        self.searching = torch.zeros(batch, dtype=torch.bool, device=x.device)
        for name in _SEARCH:
            like = g if name in ("d", "g_prev", "g_lo") else f
            setattr(self, name, torch.zeros_like(like))
        self.phase, self.round = self.phase.long(), self.round.long()
        self.insufficient = self.insufficient.bool()

    def begin(self, rows: torch.Tensor) -> None:
        """Start an iteration of `rows`: the L-BFGS direction and the first trial step."""
        if not len(rows):
            return
        o, f, g = self.options, self.f[rows], self.g[rows]
        d = _direction(-g, self.hist_s[rows], self.hist_y[rows], self.hist_rho[rows], self.gamma[rows])
        gtd = (g * d).sum(-1)
        first = o.lr * torch.clamp(1.0 / g.abs().sum(-1), max=1.0)
        t = torch.where(self.has_history[rows], torch.full_like(first, o.lr), first)
        zero = torch.zeros_like(t)
        start = dict(d=d, gtd0=gtd, d_max=d.abs().amax(-1), t=t, phase=torch.full_like(self.round[rows], _BRACKET))
        start.update(round=torch.zeros_like(self.round[rows]), insufficient=torch.zeros_like(self.searching[rows]))
        for side in ("prev", "lo", "hi"):
            start.update({f"t_{side}": zero, f"f_{side}": f, f"gtd_{side}": gtd})
        start.update(g_prev=g, g_lo=g)
        for name in _SEARCH:
            getattr(self, name)[rows] = start[name]
        self.searching[rows] = True

    def advance(self, rows: torch.Tensor, f_new: torch.Tensor, g_new: torch.Tensor) -> torch.Tensor:
        """One strong-Wolfe round (Nocedal & Wright, alg. 3.5-3.6) of `rows`, evaluated at their
        trial steps, and the next round's trial; returns the rows whose search ended (accepted,
        collapsed, or out of rounds: each takes its best point, lo, which never raises the loss)."""
        o, s = self.options, {name: getattr(self, name)[rows] for name in _SEARCH}
        f0, t, gtd0, phase = self.f[rows], s["t"], s["gtd0"], s["phase"]
        prev = (s["t_prev"], s["f_prev"], s["g_prev"], s["gtd_prev"])
        lo = (s["t_lo"], s["f_lo"], s["g_lo"], s["gtd_lo"])
        hi = (s["t_hi"], s["f_hi"], s["gtd_hi"])
        gtd_new = (g_new * s["d"]).sum(-1)
        armijo_fail = (f_new > f0 + o.c1 * t * gtd0) | ~torch.isfinite(f_new)
        curvature_ok = gtd_new.abs() <= -o.c2 * gtd0

        # Bracketing phase.
        b = phase == _BRACKET
        up = b & (armijo_fail | ((f_new >= s["f_prev"]) & (s["round"] > 0)))  # minimum lies in [prev, t]
        accept_b = b & ~up & curvature_ok
        down = b & ~up & ~accept_b & (gtd_new >= 0)  # minimum lies in [t, prev]
        extend = b & ~up & ~accept_b & ~down
        _assign(up, lo, prev)
        _assign(up, hi, (t, f_new, gtd_new))
        _assign(down, hi, (prev[0], prev[1], prev[3]))
        _assign(down | accept_b, lo, (t, f_new, g_new, gtd_new))
        t_next = _cubic_min(*prev[:2], prev[3], t, f_new, gtd_new, t + 0.01 * (t - prev[0]), t * 10)
        _assign(extend, prev, (t, f_new, g_new, gtd_new))
        # An extending row keeps its last point as "lo" in case the search ends here.
        _assign(extend, lo, (t, f_new, g_new, gtd_new))
        t = torch.where(extend, t_next, t)

        # Zoom phase.
        zoom = phase == _ZOOM
        shrink = zoom & (armijo_fail | (f_new >= lo[1]))
        accept_z = zoom & ~shrink & curvature_ok
        move_lo = zoom & ~shrink & ~accept_z
        flip = move_lo & (gtd_new * (hi[0] - lo[0]) >= 0)
        _assign(shrink, hi, (t, f_new, gtd_new))
        _assign(flip, hi, (lo[0], lo[1], lo[3]))
        _assign(move_lo | accept_z, lo, (t, f_new, g_new, gtd_new))

        phase = torch.where(up | down, torch.full_like(phase, _ZOOM), phase)
        phase = torch.where(accept_b | accept_z, torch.full_like(phase, _DONE), phase)
        s["round"] = s["round"] + 1
        s["t"], s["phase"] = t, phase
        more = s["round"] < o.max_line_search
        self._next_trial(s, more)
        for name in _SEARCH:
            getattr(self, name)[rows] = s[name]
        return rows[(s["phase"] == _DONE) | ~more]

    @staticmethod
    def _next_trial(s: dict[str, torch.Tensor], more: torch.Tensor) -> None:
        """The start of a search's next round, for rows with rounds left (`more`): zoom rows whose
        bracket has collapsed stop at lo; the others' next trial by cubic interpolation inside the
        bracket, kept off its ends."""
        phase = s["phase"]
        collapsed = more & (phase == _ZOOM) & ((s["t_hi"] - s["t_lo"]).abs() * s["d_max"] < 1e-9)
        phase = s["phase"] = torch.where(collapsed, torch.full_like(phase, _DONE), phase)
        lo, hi = torch.minimum(s["t_lo"], s["t_hi"]), torch.maximum(s["t_lo"], s["t_hi"])
        tz = _cubic_min(s["t_lo"], s["f_lo"], s["gtd_lo"], s["t_hi"], s["f_hi"], s["gtd_hi"], lo, hi)
        eps = 0.1 * (hi - lo)
        near = torch.minimum(hi - tz, tz - lo) < eps
        force = near & (s["insufficient"] | (tz >= hi) | (tz <= lo))
        tz = torch.where(force, torch.where((tz - hi).abs() < (tz - lo).abs(), hi - eps, lo + eps), tz)
        zoom = more & (phase == _ZOOM)
        s["insufficient"] = torch.where(zoom, near & ~force, s["insufficient"])
        s["t"] = torch.where(zoom, tz, s["t"])

    def finish(self, rows: torch.Tensor) -> torch.Tensor:
        """End the iteration of `rows` at their searches' best points: the curvature pair, the step,
        the stopping tests; returns which of them are done."""
        o = self.options
        t, f_new, g_new, gtd = self.t_lo[rows], self.f_lo[rows], self.g_lo[rows], self.gtd0[rows]
        s = t[:, None] * self.d[rows]
        y = g_new - self.g[rows]
        ys = (y * s).sum(-1)
        keep = ys > 1e-10
        if keep.any():
            kr = rows[keep]
            self.hist_s[kr] = torch.cat([self.hist_s[kr, 1:], s[keep, None]], 1)
            self.hist_y[kr] = torch.cat([self.hist_y[kr, 1:], y[keep, None]], 1)
            self.hist_rho[kr] = torch.cat([self.hist_rho[kr, 1:], (1.0 / ys[keep])[:, None]], 1)
            self.gamma[kr] = ys[keep] / (y[keep] * y[keep]).sum(-1)
            self.has_history[kr] = True
        f_old = self.f[rows]
        self.x[rows] = self.x[rows] + s
        self.f[rows], self.g[rows] = f_new, g_new
        self.iterations[rows] += 1
        scale = torch.maximum(torch.maximum(f_old.abs(), f_new.abs()), torch.ones_like(f_new))
        done = (
            (self.iterations[rows] >= o.max_iter)
            | ((f_old - f_new).abs() <= o.rel_tolerance * scale)
            | (g_new.abs().amax(-1) <= o.tolerance_grad)
            | (gtd > -1e-12)
            | (t == 0)
        )
        self.searching[rows] = False
        return done


def _assign(mask: torch.Tensor, dst: tuple[torch.Tensor, ...], src: tuple[torch.Tensor, ...]) -> None:
    """dst[i][mask] = src[i][mask], in place (src read before any write)."""
    values = [s[mask].clone() for s in src]
    for dt, v in zip(dst, values):
        dt[mask] = v
