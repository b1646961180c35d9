"""Real body poses for the body-model tests: the held-out actor of the bundled mocap (FAIR's fair1)."""

from __future__ import annotations

import numpy as np
import torch

from tests.prior_data_mocap import held_out_poses


def held_out_body_poses(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 21, 3) axis-angle body poses of the held-out actor, drawn at random (30 fps clips)."""
    poses = held_out_poses(fps=30.0)
    pick = np.random.default_rng(seed).choice(len(poses), size=min(n, len(poses)), replace=False)
    return poses[torch.from_numpy(pick)]
