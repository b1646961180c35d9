"""Real body poses for the body-model tests: held-out HDM05 actor 'bk' from ../shared/data."""

from __future__ import annotations

import numpy as np
import torch

from tests.conftest import SHARED_DATA


def real_or_random_body_poses(n: int, seed: int = 0) -> tuple[torch.Tensor, str]:
    """(n, 21, 3) axis-angle body poses and a word saying where they came from.

    Real mocap when ../shared/data is present (it is not on users' machines);
    otherwise random poses (sigma 0.35 rad), which the retarget check also holds for.
    """
    if (SHARED_DATA / "mocap").is_dir():
        from prior.data import load_motion
        from tests.prior_data_mocap import mocap_subset

        folder = mocap_subset(SHARED_DATA / "mocap") / "hdm05_asfamc" / "bk"
        poses = np.concatenate([load_motion(p).body_pose for p in sorted(folder.glob("*.amc"))])
        pick = np.random.default_rng(seed).choice(len(poses), size=min(n, len(poses)), replace=False)
        return torch.from_numpy(poses[pick]), "real HDM05 (actor bk)"
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 21, 3, generator=g) * 0.35, "random (sigma 0.35 rad)"
