"""Evaluate a pose prior on held-out actors: `python -m prior.evaluate [--checkpoint PATH]`.

Prints a markdown table comparing VPoser with two baselines, a Gaussian fitted to the
training poses' axis-angles (reconstructing through its 32 leading principal
components) and uniform random rotations (angle uniform up to pi about a uniform axis):
- reconstruction of held-out poses: per-joint geodesic error (deg), MPJPE (mm) of the
  22 body joints and mean vertex error (mm), both through the Anny body model, and KL;
- samples: % within the anatomical limits of `prior.limits`, and the mean per-joint
  distance (mm) from each sample to its nearest held-out real pose (joint positions by
  forward kinematics on Anny's rest skeleton);
- separation: % of held-out poses whose cost is lower than that of the same pose with a
  knee or elbow bent backwards by 60 deg (VPoser cost: ||mu||^2 and the negative ELBO
  proxy of `pose_cost`; Gaussian: negative log-likelihood).
A row for the held-out real poses themselves checks the limits.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from body.io import write_text
from body.rotations import axis_angle_to_matrix, geodesic_angle
from body.skeleton import HINGE_FLEXION_AXES
from prior.checkpoint import DEFAULT_CHECKPOINT, load
from prior.data.fk import smplx_forward_kinematics
from prior.limits import bend_backwards, within_limits
from prior.splits import load_splits
from prior.train import load_config, rest_skeleton
from prior.vposer import VPoser

REC_SIGMA = 0.1  # std of the Gaussian decoder on rotation-matrix entries in the ELBO proxy


@dataclass
class Row:
    """One line of the table; None where a metric does not apply."""

    name: str
    rec_geodesic_deg: float | None = None
    rec_mpjpe_mm: float | None = None
    rec_v2v_mm: float | None = None
    kl: float | None = None
    within_limits_pct: float | None = None
    nearest_real_mm: float | None = None
    separation_pct: float | None = None
    separation_mu_pct: float | None = None


class GaussianPrior:
    """Full-covariance Gaussian on 63-d axis-angle poses, with a k-component PCA reconstruction."""

    def __init__(self, poses: torch.Tensor, k: int) -> None:
        x = poses.reshape(len(poses), -1).double()
        self.mean = x.mean(0)
        cov = torch.cov(x.T) + 1e-6 * torch.eye(x.shape[1], dtype=x.dtype)
        self.dist = torch.distributions.MultivariateNormal(self.mean, covariance_matrix=cov)
        self.basis = torch.linalg.eigh(cov).eigenvectors[:, -k:]

    def reconstruct(self, poses: torch.Tensor) -> torch.Tensor:
        x = poses.reshape(len(poses), -1).double() - self.mean
        return (x @ self.basis @ self.basis.T + self.mean).float().reshape(poses.shape)

    def cost(self, poses: torch.Tensor) -> torch.Tensor:
        return -self.dist.log_prob(poses.reshape(len(poses), -1).double())

    def sample(self, n: int, seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return self.dist.sample((n,)).float().reshape(n, 21, 3)


def uniform_poses(n: int, seed: int) -> torch.Tensor:
    """Random poses: per joint a uniform axis and an angle uniform in [0, pi]."""
    gen = torch.Generator().manual_seed(seed)
    axis = torch.nn.functional.normalize(torch.randn(n, 21, 3, generator=gen), dim=-1)
    return axis * math.pi * torch.rand(n, 21, 1, generator=gen)


@torch.no_grad()
def pose_cost(model: VPoser, poses: torch.Tensor, kind: str = "elbo") -> torch.Tensor:
    """How implausible the prior finds each pose: "mu" = ||E[z|x]||^2; "elbo" = KL(q||N(0,I))
    + ||R(decode(mu)) - R(x)||^2 / (2 REC_SIGMA^2), a negative-ELBO proxy."""
    q = model.encode(poses)
    if kind == "mu":
        return q.mean.square().sum(-1)
    prior = torch.distributions.Normal(torch.zeros_like(q.mean), torch.ones_like(q.stddev))
    kl = torch.distributions.kl_divergence(q, prior).sum(-1)
    rec = (model.decode_rotmat(q.mean) - axis_angle_to_matrix(poses)).square().sum((-3, -2, -1))
    return kl + rec / (2 * REC_SIGMA**2)


def separation(cost, poses: torch.Tensor, seed: int) -> float:
    """% of poses cheaper than themselves with a random knee/elbow bent backwards by 60 deg."""
    gen = torch.Generator().manual_seed(seed)
    hinge = torch.randint(len(HINGE_FLEXION_AXES), (len(poses),), generator=gen)
    return 100.0 * (cost(poses) < cost(bend_backwards(poses, hinge))).float().mean().item()


def nearest_real_mm(samples: torch.Tensor, real: torch.Tensor, rest: torch.Tensor, chunk: int = 64) -> float:
    """Mean over samples of the mean per-joint distance (mm) to the closest real pose."""
    real_j = smplx_forward_kinematics(real, rest)
    sample_j = smplx_forward_kinematics(samples, rest)
    best = [(s[:, None] - real_j[None]).norm(dim=-1).mean(-1).min(1).values for s in sample_j.split(chunk)]
    return 1000.0 * torch.cat(best).mean().item()


@torch.no_grad()
def body_errors(
    body_model: torch.nn.Module, pred: torch.Tensor, target: torch.Tensor, batch: int = 256
) -> tuple[float, float]:
    """MPJPE of the 22 body joints and mean vertex error (mm) through the body model."""
    joint_err, vert_err = [], []
    for p, t in zip(pred.split(batch), target.split(batch)):
        a, b = body_model(body_pose=p), body_model(body_pose=t)
        joint_err.append((a.joints[:, :22] - b.joints[:, :22]).norm(dim=-1).mean(-1))
        vert_err.append((a.vertices - b.vertices).norm(dim=-1).mean(-1))
    return 1000.0 * torch.cat(joint_err).mean().item(), 1000.0 * torch.cat(vert_err).mean().item()


def rotation_error_deg(pred: torch.Tensor, target: torch.Tensor) -> float:
    return torch.rad2deg(geodesic_angle(axis_angle_to_matrix(pred), axis_angle_to_matrix(target))).mean().item()


@torch.no_grad()
def evaluate(
    model: VPoser, data_cfg: DictConfig, num_samples: int = 1000, max_poses: int = 4000, seed: int = 0
) -> list[Row]:
    """All rows of the table (see the module docstring)."""
    import body

    train_poses, val_poses, _ = load_splits(data_cfg, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    held_out = val_poses[torch.randperm(len(val_poses), generator=gen)[:max_poses]]
    anny = body.create("anny")
    rest = rest_skeleton(anny)
    model = model.eval()

    q = model.encode(held_out)
    rec = model.decode(q.mean)
    prior = torch.distributions.Normal(torch.zeros_like(q.mean), torch.ones_like(q.stddev))
    mpjpe, v2v = body_errors(anny, rec, held_out)
    samples = model.sample(num_samples, seed=seed)
    vposer = Row(
        "VPoser (this checkpoint)",
        rotation_error_deg(rec, held_out),
        mpjpe,
        v2v,
        torch.distributions.kl_divergence(q, prior).sum(-1).mean().item(),
        100.0 * within_limits(samples).float().mean().item(),
        nearest_real_mm(samples, held_out, rest),
        separation(lambda p: pose_cost(model, p, "elbo"), held_out, seed),
        separation(lambda p: pose_cost(model, p, "mu"), held_out, seed),
    )

    gauss = GaussianPrior(train_poses, k=model.latent_dim)
    g_rec = gauss.reconstruct(held_out)
    g_mpjpe, g_v2v = body_errors(anny, g_rec, held_out)
    g_samples = gauss.sample(num_samples, seed)
    gaussian = Row(
        f"Gaussian on axis-angle (PCA-{model.latent_dim} reconstruction)",
        rotation_error_deg(g_rec, held_out),
        g_mpjpe,
        g_v2v,
        None,
        100.0 * within_limits(g_samples).float().mean().item(),
        nearest_real_mm(g_samples, held_out, rest),
        separation(gauss.cost, held_out, seed),
    )

    u_samples = uniform_poses(num_samples, seed)
    uniform = Row(
        "Uniform rotations (angle <= pi)",
        within_limits_pct=100.0 * within_limits(u_samples).float().mean().item(),
        nearest_real_mm=nearest_real_mm(u_samples, held_out, rest),
    )
    real = Row(
        f"Held-out real poses (n={len(held_out)})",
        within_limits_pct=100.0 * within_limits(held_out).float().mean().item(),
    )
    return [vposer, gaussian, uniform, real]


def markdown_table(rows: list[Row]) -> str:
    """The rows as a markdown table ('-' where a metric does not apply)."""
    header = [
        "prior",
        "rec. geodesic (deg)",
        "rec. MPJPE (mm)",
        "rec. V2V (mm)",
        "KL (nats)",
        "samples within limits (%)",
        "samples to nearest real (mm)",
        "separation -ELBO (%)",
        "separation ‖μ‖² (%)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        values = list(asdict(row).values())
        lines.append("| " + " | ".join([values[0]] + ["-" if v is None else f"{v:.1f}" for v in values[1:]]) + " |")
    return "\n".join(lines)


def checkpoint_config(checkpoint: Path | None, overrides: Sequence[str] = ()) -> DictConfig:
    """The training config of a checkpoint: the defaults, its .yaml beside it (config.yaml in a
    folder) when present, then `overrides`; unknown keys and bad values raise ConfigError."""
    weights = DEFAULT_CHECKPOINT if checkpoint is None else checkpoint
    beside = weights.with_suffix(".yaml") if weights.is_file() else weights / "config.yaml"
    return load_config(beside if beside.is_file() else None, overrides)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="weights, official .ckpt or folder (default: shipped)"
    )
    parser.add_argument("--samples", type=int, default=1000, help="poses drawn from each prior")
    parser.add_argument("--max-poses", type=int, default=4000, help="held-out poses evaluated (random subset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the rows as JSON here, and the arguments and data config beside it (.yaml)",
    )
    parser.add_argument(
        "overrides", nargs="*", help="training config overrides (the data.* keys are used), e.g. data.fps=10"
    )
    args = parser.parse_args(argv)
    try:
        data_cfg = checkpoint_config(args.checkpoint, args.overrides).data
    except ValueError as e:
        parser.error(str(e))
    rows = evaluate(load(args.checkpoint), data_cfg, args.samples, args.max_poses, args.seed)
    print(markdown_table(rows))
    if args.json:
        write_text(args.json, json.dumps([asdict(r) for r in rows], indent=2) + "\n")
        run = {
            **vars(args),
            "checkpoint": str(args.checkpoint or DEFAULT_CHECKPOINT),
            "json": str(args.json),
            "data": data_cfg,
        }
        write_text(args.json.with_suffix(".yaml"), OmegaConf.to_yaml(run))


if __name__ == "__main__":
    main()
