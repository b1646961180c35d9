"""Terms of the fitting objective. Each returns one value per row (frame or window)."""
from __future__ import annotations

import torch

from body.skeleton import BODY_JOINT_NAMES

# Elbows and knees bending the wrong way (SMPL-X axes, see body/anny_body.py tests):
# the left elbow flexes about -y, the right about +y, knees about +x.
_BEND = ((BODY_JOINT_NAMES.index("left_elbow") - 1, 1, 1.0),
         (BODY_JOINT_NAMES.index("right_elbow") - 1, 1, -1.0),
         (BODY_JOINT_NAMES.index("left_knee") - 1, 0, -1.0),
         (BODY_JOINT_NAMES.index("right_knee") - 1, 0, -1.0))


def geman_mcclure(sq_residual: torch.Tensor, rho: float) -> torch.Tensor:
    """Robust rho^2 r^2 / (r^2 + rho^2) of squared residuals: ~r^2 near 0, at most rho^2."""
    rho2 = rho * rho
    return rho2 * sq_residual / (sq_residual + rho2)


def keypoint_data(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor,
                  rho: float) -> torch.Tensor:
    """sum_k w_k^2 GM(residual) over x and y (N,): pred, target (N, K, 2) px; weight (N, K); scale (N,) px -> units."""
    res = (pred - target) * scale[:, None, None]
    return (weight[..., None] ** 2 * geman_mcclure(res * res, rho)).sum((1, 2))


def bending(body_pose: torch.Tensor) -> torch.Tensor:
    """SMPLify's angle prior: exp(wrong-way bend)^2 summed over elbows and knees (N,)."""
    terms = [torch.exp(sign * body_pose[:, j, axis]) ** 2 for j, axis, sign in _BEND]
    return torch.stack(terms, 1).sum(1)


def squared_norm(x: torch.Tensor) -> torch.Tensor:
    """(N, ...) -> (N,) sum of squares (L2 priors on shape, hands, jaw, latents)."""
    return x.reshape(x.shape[0], -1).pow(2).sum(1)


def smoothness(x: torch.Tensor, link: torch.Tensor) -> torch.Tensor:
    """link_t |x_t+1 - x_t|^2 (B, T-1) for a sequence x (B, T, D); link (B, T-1) weights."""
    return (x[:, 1:] - x[:, :-1]).pow(2).sum(-1) * link
