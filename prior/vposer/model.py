"""VPoser v2: a VAE over 21-joint SMPL-X body poses (Pavlakos et al. 2019, v2 layout).

Submodule names and indices follow the published v2 model so that its
checkpoints load unchanged: `encoder_net` (0 flatten, 1 BatchNorm1d(63),
2 Linear, 3 LeakyReLU, 4 BatchNorm1d(512), 5 Dropout, 6 Linear, 7 Linear,
8 Normal head with `mu` and `logvar`) and `decoder_net` (0 Linear,
1 LeakyReLU, 2 Dropout, 3 Linear, 4 LeakyReLU, 5 Linear(512, 126),
6 6D-to-matrix). The `logvar` layer's output goes through softplus and is
used as the standard deviation, as in the published model.
"""

from __future__ import annotations

from typing import NamedTuple

import roma
import torch
from torch import nn
from torch.nn import functional as F

from body.rotations import matrix_to_axis_angle
from body.skeleton import NUM_BODY_JOINTS


class NormalHead(nn.Module):
    """Features -> diagonal Normal(mu, softplus(logvar-layer output))."""

    def __init__(self, num_in: int, latent_dim: int) -> None:
        super().__init__()
        self.mu = nn.Linear(num_in, latent_dim)
        self.logvar = nn.Linear(num_in, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.mu(x), F.softplus(self.logvar(x)))


class Rot6dToMatrix(nn.Module):
    """(N, J*6) -> (N, J, 3, 3). Each 6-vector is read as a 3x2 matrix (row-major)
    whose two columns are orthonormalised by Gram-Schmidt; the third is their cross product."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return roma.special_gramschmidt(x.reshape(x.shape[0], -1, 3, 2))


class VPoserOutput(NamedTuple):
    q_z: torch.distributions.Normal  # posterior q(z | pose)
    z: torch.Tensor  # (N, latent_dim) the latent that was decoded
    rotmat: torch.Tensor  # (N, 21, 3, 3) decoded joint rotations
    body_pose: torch.Tensor  # (N, 21, 3) decoded axis-angle


class VPoser(nn.Module):
    """Variational pose prior: `encode` poses to a Normal, `decode` latents to axis-angle."""

    def __init__(self, num_neurons: int = 512, latent_dim: int = 32) -> None:
        super().__init__()
        self.num_neurons, self.latent_dim = num_neurons, latent_dim
        n_in, n_out = NUM_BODY_JOINTS * 3, NUM_BODY_JOINTS * 6
        self.encoder_net = nn.Sequential(
            nn.Flatten(),
            nn.BatchNorm1d(n_in),
            nn.Linear(n_in, num_neurons),
            nn.LeakyReLU(),
            nn.BatchNorm1d(num_neurons),
            nn.Dropout(0.1),
            nn.Linear(num_neurons, num_neurons),
            nn.Linear(num_neurons, num_neurons),
            NormalHead(num_neurons, latent_dim),
        )
        self.decoder_net = nn.Sequential(
            nn.Linear(latent_dim, num_neurons),
            nn.LeakyReLU(),
            nn.Dropout(0.1),
            nn.Linear(num_neurons, num_neurons),
            nn.LeakyReLU(),
            nn.Linear(num_neurons, n_out),
            Rot6dToMatrix(),
        )

    def encode(self, body_pose: torch.Tensor) -> torch.distributions.Normal:
        """q(z | pose) for body poses (N, 21, 3) or (N, 63) axis-angle."""
        return self.encoder_net(body_pose.reshape(-1, NUM_BODY_JOINTS * 3))

    def decode_rotmat(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (N, latent_dim) -> joint rotations (N, 21, 3, 3)."""
        return self.decoder_net(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (N, latent_dim) -> body poses (N, 21, 3) axis-angle."""
        return matrix_to_axis_angle(self.decode_rotmat(z))

    def forward(self, body_pose: torch.Tensor, sample: bool = True) -> VPoserOutput:
        """Encode, draw z from q (its mean when `sample` is False), decode."""
        q_z = self.encode(body_pose)
        z = q_z.rsample() if sample else q_z.mean
        rotmat = self.decode_rotmat(z)
        return VPoserOutput(q_z, z, rotmat, matrix_to_axis_angle(rotmat))

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """`n` novel body poses (n, 21, 3): decode z ~ N(0, I) in eval mode."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, self.latent_dim, generator=gen).to(self.decoder_net[0].weight)
        was_training = self.training
        self.eval()
        try:
            return self.decode(z)
        finally:
            self.train(was_training)
