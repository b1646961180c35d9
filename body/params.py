"""Assembling the SMPL-X-layout pose from optional per-part parameters (shared by the back ends)."""
from __future__ import annotations

import torch


def batch_size(*tensors: torch.Tensor | None) -> int:
    """Batch size of the first given tensor (1 when none is given)."""
    return next((t.shape[0] for t in tensors if t is not None), 1)


def full_pose(
    batch: int,
    dtype: torch.dtype,
    device: torch.device,
    global_orient: torch.Tensor | None,
    body_pose: torch.Tensor | None,
    jaw_pose: torch.Tensor | None,
    left_hand_pose: torch.Tensor | None,
    right_hand_pose: torch.Tensor | None,
) -> torch.Tensor:
    """(B, 55, 3) axis-angles in SMPL-X joint order; missing parts (and the eyes) are zero."""

    def part(t: torch.Tensor | None, n: int) -> torch.Tensor:
        if t is None:
            return torch.zeros(batch, n, 3, dtype=dtype, device=device)
        return t.reshape(batch, n, 3).to(dtype=dtype, device=device)

    return torch.cat([part(global_orient, 1), part(body_pose, 21), part(jaw_pose, 1), part(None, 2),
                      part(left_hand_pose, 15), part(right_hand_pose, 15)], dim=1)
