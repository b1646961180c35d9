"""Terms of the fitting objective. Each returns one value per row (frame or window)."""

from __future__ import annotations

import torch

from body.skeleton import BODY_JOINT_NAMES, HINGE_FLEXION_AXES

# Elbows and knees: body_pose rows and flexion axes (see body.skeleton.HINGE_FLEXION_AXES).
_HINGE_ROWS = [BODY_JOINT_NAMES.index(n) - 1 for n in HINGE_FLEXION_AXES]
_HINGE_AXES = torch.tensor(list(HINGE_FLEXION_AXES.values()))


def geman_mcclure(sq_residual: torch.Tensor, rho: float) -> torch.Tensor:
    """Robust rho^2 r^2 / (r^2 + rho^2) of squared residuals: ~r^2 near 0, at most rho^2."""
    rho2 = rho * rho
    return rho2 * sq_residual / (sq_residual + rho2)


def keypoint_data(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor, rho: float
) -> torch.Tensor:
    """sum_k w_k^2 GM(residual) over x and y (N,): pred, target (N, K, 2) px; weight (N, K); scale (N,) px -> units."""
    res = (pred - target) * scale[:, None, None]
    return (weight[..., None] ** 2 * geman_mcclure(res * res, rho)).sum((1, 2))


def bending(body_pose: torch.Tensor) -> torch.Tensor:
    """SMPLify's angle prior: exp(wrong-way bend)^2 summed over elbows and knees (N,)."""
    flexion = (body_pose[:, _HINGE_ROWS] * _HINGE_AXES.to(body_pose)).sum(-1)
    return torch.exp(-flexion).pow(2).sum(1)


def squared_norm(x: torch.Tensor) -> torch.Tensor:
    """(N, ...) -> (N,) sum of squares (L2 priors on shape, hands, jaw, latents)."""
    return x.reshape(x.shape[0], -1).pow(2).sum(1)


def acceleration(x: torch.Tensor, link: torch.Tensor) -> torch.Tensor:
    """link_t link_t+1 |x_t+2 - 2 x_t+1 + x_t|^2 (B, T-2) for a sequence x (B, T, D); link (B, T-1)
    weights of consecutive frames (a triple with an unlinked pair counts 0)."""
    return (x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]).pow(2).sum(-1) * link[:, 1:] * link[:, :-1]
