"""Pose spaces the fitter optimises in: VPoser latents, or axis-angles with a GMM or no prior."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from body import usable_device
from body.skeleton import NUM_BODY_JOINTS

if TYPE_CHECKING:
    from prior.vposer.gmm import GaussianMixture


class PoseSpace:
    """A free variable (N, dim) per frame, its body pose (N, 21, 3) and its prior penalty (N,)."""

    name = "none"
    dim = NUM_BODY_JOINTS * 3
    is_latent = False

    def to(self, device: torch.device, dtype: torch.dtype) -> "PoseSpace":
        """This space on `device` in floating `dtype` (the body model's; `Fitter` asks for it)."""
        return self

    def initial(self, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        return torch.zeros(n, self.dim, device=device, dtype=dtype)

    def body_pose(self, v: torch.Tensor) -> torch.Tensor:
        return v.reshape(-1, NUM_BODY_JOINTS, 3)

    def penalty(self, v: torch.Tensor) -> torch.Tensor:
        return v.new_zeros(v.shape[0])

    def encode(self, body_pose: torch.Tensor) -> torch.Tensor:
        """The variable (N, dim) of body poses (N, 21, 3) (a start from a predicted pose)."""
        return body_pose.reshape(body_pose.shape[0], -1)


class VPoserSpace(PoseSpace):
    """body_pose = decoder(z); penalty |z|^2; starts at z = 0 (the prior's mean pose)."""

    name = "vposer"
    is_latent = True

    def __init__(self, vposer: torch.nn.Module) -> None:
        self.vposer = vposer.eval()
        for p in self.vposer.parameters():
            p.requires_grad_(False)
        self.dim = int(vposer.latent_dim)

    def to(self, device: torch.device, dtype: torch.dtype) -> "VPoserSpace":
        """The prior moved to `device` and cast to `dtype` in place (a float64 fit decodes in float64)."""
        self.vposer.to(device=device, dtype=dtype)
        return self

    def body_pose(self, v: torch.Tensor) -> torch.Tensor:
        return self.vposer.decode(v)

    def penalty(self, v: torch.Tensor) -> torch.Tensor:
        return v.pow(2).sum(1)

    def encode(self, body_pose: torch.Tensor) -> torch.Tensor:
        """The encoder's mean latent of each pose."""
        with torch.no_grad():
            return self.vposer.encode(body_pose.to(self.vposer.decoder_net[0].weight)).mean


class GmmSpace(PoseSpace):
    """Axis-angles with the max-mixture penalty; starts at the heaviest component's mean."""

    name = "gmm"

    def __init__(self, gmm: "GaussianMixture") -> None:
        self.gmm = gmm

    def to(self, device: torch.device, dtype: torch.dtype) -> "GmmSpace":
        return GmmSpace(self.gmm.to(device, dtype))

    def initial(self, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        return self.gmm.mode_pose().to(device=device, dtype=dtype).expand(n, -1).clone()

    def penalty(self, v: torch.Tensor) -> torch.Tensor:
        return self.gmm.penalty(v)


def load_pose_space(kind: str, path: str | None = None, device: str | torch.device = "cpu") -> PoseSpace:
    """The pose space for `prior.kind` (vposer | gmm | none) on `device` (ValueError for a CUDA
    device torch cannot see: `body.usable_device`)."""
    device = usable_device(device)
    if kind == "vposer":
        import prior

        return VPoserSpace(prior.load(path).to(device))
    if kind == "gmm":
        from prior.vposer.gmm import MAKE_ONE, GaussianMixture

        if path is None:
            raise ValueError(f"prior.kind=gmm needs prior.path, a mixture saved by prior.vposer.gmm; {MAKE_ONE}")
        return GmmSpace(GaussianMixture.load(path).to(device))
    if kind == "none":
        return PoseSpace()
    raise ValueError(f"unknown prior kind {kind!r}; use vposer, gmm or none")
