"""Baseline pose priors that VPoser is compared with: a PCA Gaussian (and its pose space), and
uniform random rotations.

The GMM baseline (SMPLify's mixture of Gaussians) lives in `prior.vposer.gmm`.
"""

from __future__ import annotations

import math

import torch

from body.skeleton import NUM_BODY_JOINTS
from prior.pose_spaces import LatentSpace


class PCAGaussian:
    """Probabilistic PCA (Tipping & Bishop 1999) on 63-d axis-angle body poses.

    x = mean + B diag(sqrt(lambda)) w + e, w ~ N(0, I_k), with B the k leading eigenvectors of the
    training poses' covariance, lambda their eigenvalues, and isotropic residual noise e whose
    variance is the mean of the discarded eigenvalues. `decode(w)` is the noise-free pose (the
    linear counterpart of a VAE decoder); `sample` draws w ~ N(0, I) and decodes it.
    """

    def __init__(self, poses: torch.Tensor, k: int = 32) -> None:
        x = poses.reshape(len(poses), -1).double()
        if not 0 < k < x.shape[1]:
            raise ValueError(f"PCA components must be in 1..{x.shape[1] - 1}, got {k}")
        self.k = k
        self.mean = x.mean(0)
        values, vectors = torch.linalg.eigh(torch.cov(x.T))  # ascending
        self.basis = vectors[:, -k:]  # (63, k)
        self.variances = values[-k:].clamp_min(1e-12)  # (k,)
        self.residual_variance = values[:-k].clamp_min(0).mean().clamp_min(1e-12).item()

    @property
    def latent_dim(self) -> int:
        return self.k

    def encode(self, poses: torch.Tensor) -> torch.Tensor:
        """Whitened coefficients w (N, k) of the projection of poses (N, 21, 3)."""
        x = poses.reshape(len(poses), -1).to(self.mean) - self.mean
        return (x @ self.basis) / self.variances.sqrt()

    def decode(self, w: torch.Tensor) -> torch.Tensor:
        """Whitened coefficients (N, k) -> body poses (N, 21, 3), in w's dtype."""
        basis = self.basis.to(w) * self.variances.sqrt().to(w)
        return (self.mean.to(w) + w @ basis.T).reshape(len(w), NUM_BODY_JOINTS, 3)

    def reconstruct(self, poses: torch.Tensor) -> torch.Tensor:
        """Project poses onto the k-dimensional subspace and back (N, 21, 3)."""
        return self.decode(self.encode(poses)).to(poses.dtype)

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return self.decode(torch.randn(n, self.k, generator=gen, dtype=torch.float64)).float()

    def cost(self, poses: torch.Tensor) -> torch.Tensor:
        """Negative log-density (N,), up to a constant: 0.5 |w|^2 + 0.5 |residual|^2 / residual variance."""
        x = poses.reshape(len(poses), -1).to(self.mean) - self.mean
        coef = x @ self.basis
        residual = x - coef @ self.basis.T
        return 0.5 * (coef.square() / self.variances).sum(-1) + 0.5 * residual.square().sum(-1) / self.residual_variance


class PCASpace(LatentSpace):
    """A PCA Gaussian's whitened coefficients w, like a linear VPoser: pose = mean + B sqrt(lambda) w."""

    name = "pca"

    def __init__(self, pca: PCAGaussian) -> None:
        self.pca = pca
        self.dim = pca.latent_dim

    def body_pose(self, v: torch.Tensor) -> torch.Tensor:
        return self.pca.decode(v)

    def encode(self, body_pose: torch.Tensor) -> torch.Tensor:
        return self.pca.encode(body_pose).to(body_pose)


def uniform_poses(n: int, seed: int) -> torch.Tensor:
    """Random poses (n, 21, 3): per joint a uniform axis and an angle uniform in [0, pi]."""
    gen = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, NUM_BODY_JOINTS, 3, generator=gen), dim=-1)
    return axis * math.pi * torch.rand(n, NUM_BODY_JOINTS, 1, generator=gen)
