"""Optimisation variables <-> saved parameters (axis-angle always; the VPoser latent as well), by `VARIABLES`."""

from __future__ import annotations

import numpy as np
import torch

from fitting.variables import LATENT, POSE, VARIABLES, decoded


def to_params(flat: dict[str, torch.Tensor], body_pose: torch.Tensor, latent: bool) -> dict[str, np.ndarray]:
    """Per-frame parameters (N, ...) from flat variables (N, ...) and their decoded body pose (N, 21, 3):
    each variable decoded (`fitting.variables.decoded`), and the pose-space variable as `latent` when it is one."""
    params = decoded(flat, body_pose)
    if latent:
        params[LATENT] = flat[POSE]
    return {k: x.detach().cpu().numpy() for k, x in params.items()}


def to_variables(
    params: dict[str, np.ndarray], latent: bool, device: torch.device, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """One frame's optimisation variables (flat vectors) from its saved parameters (inverse of `to_params`)."""
    out = {}
    for s in VARIABLES:
        key = LATENT if s.name == POSE and latent else s.decoded_name
        if key in params:
            out[s.name] = torch.as_tensor(np.asarray(params[key]), device=device, dtype=dtype).reshape(-1)
    return out
