"""Body poses for tests: real mocap when the prior's data readers are there, else random."""
from __future__ import annotations

import torch


def real_or_random_body_poses(n: int, seed: int = 0) -> tuple[torch.Tensor, str]:
    """(n, 21, 3) axis-angle body poses and a word saying where they came from."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 21, 3, generator=g) * 0.35, "random (sigma 0.35 rad)"
