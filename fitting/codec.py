"""Optimisation variables <-> saved parameters (axis-angle always; the VPoser latent as well)."""

from __future__ import annotations

import numpy as np
import torch

from fitting.terms import HAND_POSES

PER_FRAME_PARTS = ("left_hand_pose", "right_hand_pose", "jaw_pose", "expression")


def to_params(flat: dict[str, torch.Tensor], body_pose: torch.Tensor, latent: bool) -> dict[str, np.ndarray]:
    """Per-frame parameters (N, ...) from flat variables (N, ...) and their decoded body pose (N, 21, 3):
    hands as (N, 15, 3) axis-angles, and the pose-space variable as `latent` when it is one."""
    n = body_pose.shape[0]
    params = {
        "global_orient": flat["global_orient"],
        "body_pose": body_pose,
        "transl": flat["transl"],
        "shape": flat["shape"],
    }
    for k in PER_FRAME_PARTS:
        if k in flat:
            params[k] = flat[k].reshape(n, 15, 3) if k in HAND_POSES else flat[k]
    if latent:
        params["latent"] = flat["pose"]
    return {k: x.detach().cpu().numpy() for k, x in params.items()}


def to_variables(
    params: dict[str, np.ndarray], latent: bool, device: torch.device, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """One frame's optimisation variables (flat vectors) from its saved parameters (inverse of `to_params`)."""
    out = {
        "pose": params["latent"] if latent else params["body_pose"],
        "global_orient": params["global_orient"],
        "transl": params["transl"],
        "shape": params["shape"],
    }
    out.update({k: params[k] for k in PER_FRAME_PARTS if k in params})
    return {k: torch.as_tensor(np.asarray(x), device=device, dtype=dtype).reshape(-1) for k, x in out.items()}
