"""Gaussian-mixture pose prior (the SMPLify baseline): EM fit, max-mixture penalty, sampling.

    python -m prior.vposer.gmm POSES.npz --out gmm.npz   # then: run_fit.py ... prior.kind=gmm prior.path=gmm.npz

POSES.npz holds `body_pose` (N, 21, 3), e.g. the prior's train.npz from `python -m prior.data.build`.
The command's arguments are saved beside the mixture (gmm.yaml).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from configs.files import write_npz, write_text

MAKE_ONE = "make one with python -m prior.vposer.gmm POSES.npz --out gmm.npz"


@dataclass
class GaussianMixture:
    """Full-covariance mixture over flattened body poses (D = 63)."""

    weights: torch.Tensor  # (K,)
    means: torch.Tensor  # (K, D)
    covariances: torch.Tensor  # (K, D, D)

    def __post_init__(self) -> None:
        chol = torch.linalg.cholesky(self.covariances)
        eye = torch.eye(chol.shape[-1], dtype=chol.dtype, device=chol.device).expand_as(chol)
        self._inv_chol = torch.linalg.solve_triangular(chol, eye, upper=False)  # L^-1
        logdet = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        # Per-component constant of the max-mixture cost, shifted so that its minimum is 0.
        const = 0.5 * logdet - self.weights.log()
        self._const = const - const.min()

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> "GaussianMixture":
        return GaussianMixture(
            *(t.to(device=device, dtype=dtype) for t in (self.weights, self.means, self.covariances))
        )

    def penalty(self, body_pose: torch.Tensor) -> torch.Tensor:
        """min_k [ 0.5 (x - mu_k)^T S_k^-1 (x - mu_k) + 0.5 log|S_k| - log w_k ] (N,), shifted to be >= 0."""
        x = body_pose.reshape(body_pose.shape[0], -1)
        diff = x[:, None] - self.means[None]  # (N, K, D)
        white = torch.einsum("kij,nkj->nki", self._inv_chol, diff)
        cost = 0.5 * white.pow(2).sum(-1) + self._const
        return cost.min(1).values

    def whitened(self, body_pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The penalty as a least-squares term, for each pose's cheapest component k: the whitened
        residual r = L_k^-1 (x - mu_k) (N, D), the constant (N,), so that penalty = 0.5 |r|^2 + const,
        and L_k^-1 (N, D, D), the Jacobian of r."""
        x = body_pose.reshape(body_pose.shape[0], -1)
        diff = x.detach()[:, None] - self.means[None]
        k = (0.5 * torch.einsum("kij,nkj->nki", self._inv_chol, diff).pow(2).sum(-1) + self._const).argmin(1)
        inv_chol = self._inv_chol[k]
        return (inv_chol @ (x - self.means[k])[..., None])[..., 0], self._const[k], inv_chol

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """`n` poses (n, D) drawn from the mixture: a component by weight, then its Gaussian."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        weights, means, covs = (t.cpu() for t in (self.weights, self.means, self.covariances))
        k = torch.multinomial(weights.double(), n, replacement=True, generator=gen)
        eps = torch.randn(n, means.shape[1], generator=gen, dtype=torch.float64)
        chol = torch.linalg.cholesky(covs.double())[k]
        x = means.double()[k] + (chol @ eps[..., None])[..., 0]
        return x.to(device=self.means.device, dtype=self.means.dtype)

    def mode_pose(self) -> torch.Tensor:
        """The mean of the heaviest component (63,), a natural starting pose."""
        return self.means[self.weights.argmax()]

    def save(self, path: str | Path) -> None:
        write_npz(
            path,
            weights=self.weights.cpu().numpy(),
            means=self.means.cpu().numpy(),
            covariances=self.covariances.cpu().numpy(),
        )

    @staticmethod
    def load(path: str | Path, fix: str = MAKE_ONE) -> "GaussianMixture":
        """A mixture saved by `save`; ValueError naming the file and `fix` if it is missing or malformed."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = [torch.from_numpy(data[k]).double() for k in ("weights", "means", "covariances")]
            return GaussianMixture(*arrays)
        except (OSError, EOFError, KeyError, ValueError, RuntimeError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: cannot load a mixture ({type(e).__name__}: {e}); {fix}") from e


def fit_gmm(
    x: np.ndarray | torch.Tensor,
    components: int = 8,
    iterations: int = 200,
    seed: int = 0,
    reg: float = 1e-4,
    tol: float = 1e-6,
) -> GaussianMixture:
    """EM for a full-covariance mixture on samples x (N, D), k-means++ start.

    `reg` is added to every covariance's diagonal (keeps thin components invertible).
    """
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64).reshape(len(x), -1)
    n, d = x.shape
    gen = torch.Generator().manual_seed(seed)
    means = _kmeans_pp(x, components, gen)
    cov = torch.cov(x.T) + reg * torch.eye(d, dtype=x.dtype)
    covs = cov.expand(components, d, d).clone()
    weights = torch.full((components,), 1.0 / components, dtype=x.dtype)
    prev = -math.inf
    for _ in range(iterations):
        log_p = _log_gauss(x, means, covs) + weights.log()  # (N, K)
        total = torch.logsumexp(log_p, 1)
        resp = (log_p - total[:, None]).exp()
        nk = resp.sum(0) + 1e-10
        weights = nk / n
        means = resp.T @ x / nk[:, None]
        diff = x[:, None] - means[None]  # (N, K, D)
        covs = torch.einsum("nk,nki,nkj->kij", resp, diff, diff) / nk[:, None, None]
        covs = covs + reg * torch.eye(d, dtype=x.dtype)
        ll = total.mean().item()
        if abs(ll - prev) < tol * max(1.0, abs(ll)):
            break
        prev = ll
    return GaussianMixture(weights, means, covs)


def _log_gauss(x: torch.Tensor, means: torch.Tensor, covs: torch.Tensor) -> torch.Tensor:
    chol = torch.linalg.cholesky(covs)
    diff = (x[:, None] - means[None]).permute(1, 2, 0)  # (K, D, N)
    white = torch.linalg.solve_triangular(chol, diff, upper=False)
    logdet = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    d = x.shape[1]
    return (-0.5 * white.pow(2).sum(1) - 0.5 * (logdet[:, None] + d * math.log(2 * math.pi))).T


def _kmeans_pp(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    centres = [x[torch.randint(len(x), (1,), generator=gen)].squeeze(0)]
    for _ in range(1, k):
        dist = torch.cdist(x, torch.stack(centres)).min(1).values.pow(2)
        centres.append(x[torch.multinomial(dist / dist.sum(), 1, generator=gen)].squeeze(0))
    return torch.stack(centres)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m prior.vposer.gmm", description="Fit the GMM pose prior baseline.")
    parser.add_argument("poses", type=Path, help=".npz with body_pose (N, 21, 3)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--max-poses", type=int, default=30000, help="random subset used by EM")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with np.load(args.poses, allow_pickle=False) as data:
        poses = data["body_pose"].reshape(len(data["body_pose"]), -1)
    rng = np.random.default_rng(args.seed)
    poses = poses[rng.choice(len(poses), min(args.max_poses, len(poses)), replace=False)]
    fit_gmm(poses, components=args.components, seed=args.seed).save(args.out)
    settings = args.out.with_suffix(".yaml")
    write_text(settings, OmegaConf.to_yaml({k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}))
    print(f"wrote {args.out} ({settings.name}: its settings): {args.components} components from {len(poses)} poses")


if __name__ == "__main__":
    main()
