"""Pose recovery under a prior: the denoising and completion tasks of Pose-NDF / DPoser(-X).

Every prior is a pose space (`prior.pose_spaces`, the fitter's too): a free variable v (N, dim)
per pose, the body rotations it gives and a penalty, its negative log-prior up to a constant
(VPoser 0.5 |z|^2, its latent mixture's or the GMM's max-component penalty, the PCA Gaussian's
0.5 |w|^2 on whitened coefficients, none). The tasks use a space in float32 on the CPU (its
`to`, in place for a VPoser's).

`recover` finds the MAP pose given 3D joint observations with isotropic Gaussian noise of
std sigma: it minimises  sum_observed |FK(v)_j - y_j|^2 / (2 sigma^2) + penalty(v), a least-squares
problem (every penalty is 0.5 |r(v)|^2 + const), by Levenberg-Marquardt for each pose separately
(batched, a fixed budget of iterations, float32, Jacobians by forward-mode autodiff), so a pose's
result does not depend on the other poses of the batch. Joints come from forward kinematics on a
fixed rest skeleton (the pelvis stays at its rest position, no global rotation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from prior.data.fk import RestSkeleton
from prior.evaluation.metrics import mpjpe
from prior.pose_spaces import PoseSpace

DTYPE = torch.float32  # of the optimisation
DAMPING_FLOOR = 1e-2  # LM: least diagonal scaling, relative to the mean of diag(J^T J)
MAX_STEP = 3.0  # LM: longest step (radians of axis-angle, or latent units)


@dataclass(frozen=True)
class Budget:
    """Optimiser settings of `recover`: Levenberg-Marquardt iterations, and poses solved at once
    (bounds the memory of the Jacobians; results do not depend on it)."""

    iterations: int = 30
    chunk: int = 512


def recover(
    space: PoseSpace,
    start: torch.Tensor,
    observed: torch.Tensor,
    rest: torch.Tensor,
    sigma: float | torch.Tensor,
    visible: torch.Tensor | None = None,
    budget: Budget = Budget(),
) -> torch.Tensor:
    """MAP joints (N, 22, 3) of poses whose joints were observed as `observed` (N, 22, 3) with
    Gaussian noise of std `sigma` (metres; a float or one per pose, (N,)), only where `visible`
    (N, 22) bool is True (default: all); the optimisation starts at `start` (N, dim)."""
    space = space.to("cpu", DTYPE)
    n = len(observed)
    target = observed.detach().to(DTYPE)
    sigma = torch.as_tensor(sigma, dtype=DTYPE).expand(n)
    mask = torch.ones(target.shape[:2], dtype=DTYPE) if visible is None else visible.to(DTYPE)
    scale = mask.sqrt() / sigma[:, None]  # data residual (joint - target) * scale: 0.5 |r|^2 is the data term
    rest = rest.detach().to(DTYPE)
    v = start.detach().to(DTYPE)
    with torch.no_grad():
        solved = [
            _levenberg_marquardt(
                space,
                v[i : i + budget.chunk],
                target[i : i + budget.chunk],
                scale[i : i + budget.chunk],
                rest,
                budget.iterations,
            )
            for i in range(0, n, budget.chunk)
        ]
        return RestSkeleton(rest)(space.rotmat(torch.cat(solved)))


def _levenberg_marquardt(
    space: PoseSpace, v: torch.Tensor, target: torch.Tensor, scale: torch.Tensor, rest: torch.Tensor, iterations: int
) -> torch.Tensor:
    """Per-row LM on 0.5 |r(v)|^2 + const(v) with Marquardt's diagonal damping; returns v (N, dim)."""

    def data_residual(x: torch.Tensor) -> torch.Tensor:
        return ((RestSkeleton(rest)(space.rotmat(x)) - target) * scale[..., None]).flatten(1)

    def residuals(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        prior_r, const, _ = space.prior_residual(x)
        return torch.cat([data_residual(x), prior_r], 1), const

    def cost(r: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
        total = 0.5 * r.square().sum(-1) + const
        return torch.where(torch.isfinite(total), total, torch.full_like(total, math.inf))

    def jacobian(x: torch.Tensor) -> torch.Tensor:  # (N, m, dim); rows are independent
        tangents = torch.eye(x.shape[1], dtype=x.dtype).unsqueeze(1).expand(-1, len(x), -1)
        data = torch.func.vmap(lambda t: torch.func.jvp(data_residual, (x,), (t,))[1])(tangents)  # forward mode
        return torch.cat([data.permute(1, 2, 0), space.prior_residual(x)[2]], 1)

    r, const = residuals(v)
    current = cost(r, const)
    damping = torch.full((len(v),), 1e-3, dtype=v.dtype)
    for _ in range(iterations):
        jac = jacobian(v)
        jtj = jac.transpose(1, 2) @ jac
        grad = (jac.transpose(1, 2) @ r[..., None])[..., 0]
        diag = jtj.diagonal(dim1=1, dim2=2)
        # Marquardt's scaling, floored: directions the joints barely see (twists) still get damped
        scaling = diag.clamp_min(DAMPING_FLOOR * diag.mean(-1, keepdim=True) + 1e-12)
        step, info = torch.linalg.solve_ex(jtj + damping[:, None, None] * torch.diag_embed(scaling), grad)
        solved = (info == 0) & torch.isfinite(step).all(-1)  # a singular system: no step, more damping
        step = torch.where(solved[:, None], -step, torch.zeros_like(step))
        step = step * (MAX_STEP / step.norm(dim=-1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
        trial = v + step
        r_trial, const_trial = residuals(trial)
        new = cost(r_trial, const_trial)
        better = solved & (new < current)
        v = torch.where(better[:, None], trial, v)
        r = torch.where(better[:, None], r_trial, r)
        current = torch.where(better, new, current)
        damping = torch.where(better, damping / 3, damping * 4).clamp(1e-10, 1e10)
    return v


def add_noise(joints: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    """Joints plus Gaussian noise of std `std` on every coordinate (DPoser's add_noise)."""
    gen = torch.Generator().manual_seed(seed)
    return joints + std * torch.randn(joints.shape, generator=gen, dtype=joints.dtype)


def denoise(
    space: PoseSpace,
    clean: torch.Tensor,
    rest: torch.Tensor,
    noise: Sequence[float],
    seed: int = 0,
    min_sigma: float = 0.01,
    budget: Budget = Budget(),
) -> torch.Tensor:
    """(len(noise), N) MPJPE (metres, 22 joints) to the clean joints (N, 22, 3) of the MAP poses
    recovered from the clean joints plus Gaussian noise of each std in `noise` (metres) per
    coordinate, all from the space's mean start, as one batch; the data term's sigma is
    max(noise, min_sigma)."""
    space = space.to("cpu", DTYPE)
    n = len(clean)
    noisy = torch.cat([add_noise(clean, std, seed + i) for i, std in enumerate(noise)])
    sigma = torch.tensor([max(std, min_sigma) for std in noise], dtype=DTYPE).repeat_interleave(n)
    est = recover(space, space.initial(n * len(noise), "cpu", DTYPE), noisy, rest, sigma, budget=budget)
    return mpjpe(est, clean.repeat(len(noise), 1, 1)).reshape(len(noise), n)


def complete(
    space: PoseSpace,
    clean: torch.Tensor,
    rest: torch.Tensor,
    hidden: Sequence[Sequence[int]],
    hypotheses: int = 10,
    seed: int = 0,
    sigma: float = 0.01,
    budget: Budget = Budget(),
) -> torch.Tensor:
    """(len(hidden), N, hypotheses) MPJPE (metres) on each set of `hidden` joints of the poses
    recovered from the exact other joints of `clean` (N, 22, 3) (data term with std `sigma`), one
    hypothesis per random start of the space; every part and hypothesis as one batch."""
    space = space.to("cpu", DTYPE)
    n, joints = clean.shape[:2]
    rows = len(hidden) * hypotheses * n  # part-major, then hypothesis, then pose
    visible = torch.ones(len(hidden), joints, dtype=torch.bool)
    for p, part in enumerate(hidden):
        visible[p, list(part)] = False
    visible = visible.repeat_interleave(hypotheses * n, 0)
    target = clean.repeat(len(hidden) * hypotheses, 1, 1)
    start = space.random_start(rows, torch.Generator().manual_seed(seed))
    est = recover(space, start, target, rest, sigma, visible, budget).reshape(len(hidden), hypotheses, n, joints, 3)
    truth = clean.to(est)
    out = [mpjpe(est[p].flatten(0, 1), truth.repeat(hypotheses, 1, 1), part) for p, part in enumerate(hidden)]
    return torch.stack(out).reshape(len(hidden), hypotheses, n).transpose(1, 2)
