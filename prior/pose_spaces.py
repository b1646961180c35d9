"""Pose spaces: the free variable v (N, dim) a pose is optimised in, the body pose it gives, and
the prior's penalty, its negative log-likelihood up to a constant. The fitter (`fitting`) and the
evaluation's recovery tasks (`prior.evaluation.tasks`) both work in them, on one scale:
- no prior (`PoseSpace`): v = axis-angle pose, no penalty;
- VPoser (`VPoserSpace`): v = z, pose = decoder(z), penalty 0.5 |z|^2 (z ~ N(0, I)); the PCA
  Gaussian baseline likewise (`prior.evaluation.baselines.PCASpace`);
- GMM (`GmmSpace`, `prior.vposer.gmm`): v = axis-angle, the max-mixture penalty;
- VPoser with its latent mixture (`LatentMixtureSpace`, `prior.vposer.latent_mixture`): v = z,
  that mixture's max-component penalty.
Every penalty is a least-squares term, 0.5 |r(v)|^2 + const(v) (`prior_residual`).
"""

from __future__ import annotations

import torch

from body.rotations import axis_angle_to_matrix
from body.skeleton import NUM_BODY_JOINTS
from prior.vposer.gmm import GaussianMixture
from prior.vposer.model import VPoser


class PoseSpace:
    """No prior: v is the axis-angle pose (N, 63); no penalty; starts from the rest pose."""

    name = "none"
    dim = NUM_BODY_JOINTS * 3
    is_latent = False  # v is not an axis-angle pose
    start_std = 0.1  # radians, std of `random_start`

    def to(self, device: torch.device | str, dtype: torch.dtype) -> PoseSpace:
        """This space on `device` in floating `dtype` (the fitter asks for its body model's)."""
        return self

    def initial(self, n: int, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
        """The start (n, dim) of the space's most probable pose."""
        return torch.zeros(n, self.dim, device=device, dtype=dtype)

    def random_start(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """`n` random starts (n, dim) on the CPU, drawn with `gen`."""
        return self.start_std * torch.randn(n, self.dim, generator=gen, dtype=torch.float32)

    def body_pose(self, v: torch.Tensor) -> torch.Tensor:
        """The axis-angle body poses (N, 21, 3) of `v`."""
        return v.reshape(-1, NUM_BODY_JOINTS, 3)

    def rotmat(self, v: torch.Tensor) -> torch.Tensor:
        """The joint rotations (N, 21, 3, 3) of `v`."""
        return axis_angle_to_matrix(self.body_pose(v))

    def penalty(self, v: torch.Tensor) -> torch.Tensor:
        """The prior's negative log-likelihood of each row (N,), up to a constant."""
        return v.new_zeros(v.shape[0])

    def prior_residual(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The penalty as 0.5 |r|^2 + const: r (N, p), const (N,) and the Jacobian dr/dv (N, p, dim)."""
        return v.new_zeros(len(v), 0), v.new_zeros(len(v)), v.new_zeros(len(v), 0, v.shape[1])

    def encode(self, body_pose: torch.Tensor) -> torch.Tensor:
        """The variable (N, dim) of body poses (N, 21, 3) (a start from a predicted pose)."""
        return body_pose.reshape(body_pose.shape[0], -1)


class LatentSpace(PoseSpace):
    """A standard-normal latent z decoded to poses (subclasses decode): penalty 0.5 |z|^2; starts
    at z = 0 (the decoder's mean pose) or z ~ N(0, I)."""

    is_latent = True

    def random_start(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.dim, generator=gen, dtype=torch.float32)

    def penalty(self, v: torch.Tensor) -> torch.Tensor:
        return 0.5 * v.square().sum(-1)

    def prior_residual(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return v, v.new_zeros(len(v)), torch.eye(v.shape[1], dtype=v.dtype, device=v.device).expand(len(v), -1, -1)


class VPoserSpace(LatentSpace):
    """A VPoser's latent: pose = decoder(z). The space holds `vposer` itself, in eval mode without
    gradients."""

    name = "vposer"

    def __init__(self, vposer: VPoser) -> None:
        self.vposer = vposer.eval().requires_grad_(False)
        self.dim = int(vposer.latent_dim)

    def to(self, device: torch.device | str, dtype: torch.dtype) -> VPoserSpace:
        """The prior moved to `device` and cast to `dtype` in place (a float64 fit decodes in float64)."""
        self.vposer.to(device=device, dtype=dtype)
        return self

    def body_pose(self, v: torch.Tensor) -> torch.Tensor:
        return self.vposer.decode(v)

    def rotmat(self, v: torch.Tensor) -> torch.Tensor:
        return self.vposer.decode_rotmat(v)

    def encode(self, body_pose: torch.Tensor) -> torch.Tensor:
        """The encoder's mean latent of each pose."""
        with torch.no_grad():
            return self.vposer.encode(body_pose.to(self.vposer.decoder_net[0].weight)).mean


class _MixturePrior:
    """A Gaussian mixture over the space's variable (`mixture`): its max-component penalty; starts
    at the heaviest component's mean or at samples of the mixture."""

    mixture: GaussianMixture

    def initial(self, n: int, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
        return self.mixture.mode_pose().to(device=device, dtype=dtype).expand(n, -1).clone()

    def random_start(self, n: int, gen: torch.Generator) -> torch.Tensor:
        return self.mixture.sample(n, seed=int(torch.randint(2**62, (1,), generator=gen)))

    def penalty(self, v: torch.Tensor) -> torch.Tensor:
        return self.mixture.penalty(v)

    def prior_residual(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.mixture.whitened(v)


class GmmSpace(_MixturePrior, PoseSpace):
    """Axis-angles under a GMM (SMPLify's prior)."""

    name = "gmm"

    def __init__(self, mixture: GaussianMixture) -> None:
        self.mixture = mixture

    def to(self, device: torch.device | str, dtype: torch.dtype) -> GmmSpace:
        return GmmSpace(self.mixture.to(device, dtype))


class LatentMixtureSpace(_MixturePrior, VPoserSpace):
    """A VPoser's latent under the mixture fitted to its training codes (`prior.vposer.latent_mixture`)."""

    name = "vposer_mixture"

    def __init__(self, vposer: VPoser, mixture: GaussianMixture) -> None:
        super().__init__(vposer)
        self.mixture = mixture

    def to(self, device: torch.device | str, dtype: torch.dtype) -> LatentMixtureSpace:
        return LatentMixtureSpace(self.vposer.to(device=device, dtype=dtype), self.mixture.to(device, dtype))
