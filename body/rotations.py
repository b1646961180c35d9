"""Rotation conversions used across the project (thin, batched, differentiable), and smoothing over time.

Built on `roma` (a dependency of `anny`), which handles the small-angle and
near-pi cases of the axis-angle map with stable gradients.
"""

from __future__ import annotations

import roma
import torch


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    return roma.rotvec_to_rotmat(aa)


def matrix_to_axis_angle(rot: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle with angle in [0, pi]."""
    return roma.rotmat_to_rotvec(rot)


def geodesic_angle(r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """Angle in radians of the relative rotation between (..., 3, 3) matrices."""
    rel = r1.transpose(-1, -2) @ r2
    cos = ((rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0).clamp(-1.0 + 1e-7, 1.0 - 1e-7)
    return torch.arccos(cos)


def mirror_axis_angle(aa: torch.Tensor) -> torch.Tensor:
    """Reflect axis-angle rotations through the x = 0 plane (left <-> right).

    A rotation about (x, y, z) becomes one about (x, -y, -z) for a reflection of x.
    Joint order is unchanged; swap left/right joints with `skeleton.BODY_MIRROR`.
    """
    return aa * aa.new_tensor([1.0, -1.0, -1.0])


def gaussian_smooth(values: torch.Tensor, sigma: float) -> torch.Tensor:
    """(T, ...) values averaged over time with a Gaussian of `sigma` frames (the ends repeated)."""
    radius = max(1, round(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=values.dtype, device=values.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    flat = values.reshape(len(values), -1).T[:, None]  # (D, 1, T)
    padded = torch.cat([flat[..., :1].expand(-1, -1, radius), flat, flat[..., -1:].expand(-1, -1, radius)], -1)
    out = torch.nn.functional.conv1d(padded, (kernel / kernel.sum())[None, None])
    return out[:, 0].T.reshape(values.shape)


def smooth_rotations(rotations: torch.Tensor, sigma: float) -> torch.Tensor:
    """(T, ..., 3, 3) rotation matrices averaged over time (`gaussian_smooth`), each mean projected
    back to the nearest rotation."""
    return roma.special_procrustes(gaussian_smooth(rotations, sigma))
