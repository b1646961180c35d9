"""The fitter's pose space from its config (`prior.kind`, `prior.path`); the spaces are `prior.pose_spaces`."""

from __future__ import annotations

import torch

from body import usable_device
from prior.pose_spaces import GmmSpace, PoseSpace, VPoserSpace
from prior.vposer.checkpoint import load
from prior.vposer.gmm import MAKE_ONE, GaussianMixture


def load_pose_space(kind: str, path: str | None = None, device: str | torch.device = "cpu") -> PoseSpace:
    """The pose space for `prior.kind` (vposer | gmm | none) on `device` (ValueError for a CUDA
    device torch cannot see: `body.usable_device`)."""
    device = usable_device(device)
    if kind == "vposer":
        return VPoserSpace(load(path).to(device))
    if kind == "gmm":
        if path is None:
            raise ValueError(f"prior.kind=gmm needs prior.path, a mixture saved by prior.vposer.gmm; {MAKE_ONE}")
        return GmmSpace(GaussianMixture.load(path).to(device))
    if kind == "none":
        return PoseSpace()
    raise ValueError(f"unknown prior kind {kind!r}; use vposer, gmm or none")
