"""Euler-angle channels (BVH, ASF/AMC) to rotation matrices, in numpy float64."""

from __future__ import annotations

import numpy as np


def axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations by `angle` radians about the world axis "x", "y" or "z"."""
    c, s = np.cos(angle), np.sin(angle)
    one, zero = np.ones_like(angle), np.zeros_like(angle)
    rows = {
        "x": ((one, zero, zero), (zero, c, -s), (zero, s, c)),
        "y": ((c, zero, s), (zero, one, zero), (-s, zero, c)),
        "z": ((c, -s, zero), (s, c, zero), (zero, zero, one)),
    }[axis.lower()]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def euler_to_matrix(angles: np.ndarray, axes: str) -> np.ndarray:
    """(..., k) angles in radians, one per letter of `axes`, to (..., 3, 3) rotations.

    The matrix is R_axes[0] @ R_axes[1] @ ... : the first axis is outermost, as in BVH
    channel lists. For ASF/AMC, where the first listed axis is applied first, pass the
    angles and axes reversed.
    """
    out = np.broadcast_to(np.eye(3), (*angles.shape[:-1], 3, 3))
    for k, axis in enumerate(axes):
        out = out @ axis_rotation(axis, angles[..., k])
    return out
