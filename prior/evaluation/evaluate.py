"""Evaluate a pose prior on held-out actors: `python -m prior.evaluation.evaluate [--checkpoint PATH] [--compare PATH]`.

Measures priors the way Pose-NDF, NRDF and DPoser(-X) do, on the held-out actors' poses (the
dataset's val.npz) and prints three markdown tables, for: the VPoser being evaluated (default the
shipped checkpoint), again with its latent mixture when one lies beside it (`prior.vposer.latent_mixture`),
optionally a second VPoser (`--compare`), a GMM (8 full-covariance components,
SMPLify's prior, `prior.vposer.gmm`) and a PCA Gaussian (32 components, `prior.evaluation.baselines`) fitted on the
same training poses (train.npz), and no prior. Joints are the 22 SMPL-X body joints by forward
kinematics on Anny's rest skeleton (pelvis fixed, no global rotation); metric definitions are in
`prior.evaluation.metrics`, the recovery tasks in `prior.evaluation.tasks`.

1. Reconstruction of held-out poses (VPoser: decode(encode(x).mean); PCA: project and
   reconstruct; the GMM and no prior have no encoder): geodesic error (deg per joint), MPJPE and
   PA-MPJPE (mm), mean vertex error on the Anny mesh (V2V, mm); separation: % of held-out poses
   that cost less than themselves with a knee or elbow bent backwards by 60 deg (VPoser: a
   negative-ELBO proxy; PCA: its negative log-density; GMM: its penalty).
2. Samples (`--samples` per prior, seeded; no prior: uniform random rotations): % within the
   anatomical limits of `prior.evaluation.limits`; APD (cm); k-NN precision and recall (k = 3, axis-angle
   features) against as many held-out real poses; dNN (rad, summed over the 21 joints) and the
   mean per-joint distance (mm) to the nearest held-out real pose.
3. Denoising: Gaussian noise of 20, 40 and 100 mm per coordinate on the 22 joints of
   `--task-poses` held-out poses, MAP recovery under each prior (`prior.evaluation.tasks.denoise`), MPJPE (mm)
   to the clean joints. Completion: the left leg, both legs or the left arm hidden (DPoser's joint
   sets, hip/collar included), the other joints observed exactly, `--hypotheses` random starts
   each; MPJPE (mm) on the hidden joints, best hypothesis per pose and mean over hypotheses.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from omegaconf import DictConfig, OmegaConf

from body.rotations import axis_angle_to_matrix
from body.skeleton import HINGE_FLEXION_AXES
from configs.files import write_text
from prior.data.fk import rest_joints, smplx_forward_kinematics
from prior.data.splits import load_splits
from prior.evaluation import metrics
from prior.evaluation.baselines import PCAGaussian, PCASpace, uniform_poses
from prior.evaluation.limits import bend_backwards, within_limits
from prior.evaluation.tasks import DTYPE, Budget, add_noise, complete, denoise
from prior.pose_spaces import GmmSpace, LatentMixtureSpace, PoseSpace, VPoserSpace
from prior.vposer.checkpoint import DEFAULT_CHECKPOINT, load
from prior.vposer.config import checkpoint_config
from prior.vposer.gmm import GaussianMixture, fit_gmm
from prior.vposer.latent_mixture import load_beside
from prior.vposer.model import VPoser

REC_SIGMA = 0.1  # std of the Gaussian decoder on rotation-matrix entries in the ELBO proxy
NOISE_MM = (20, 40, 100)
GMM_COMPONENTS = 8
PCA_COMPONENTS = 32


@dataclass
class Row:
    """One prior's results; None where a metric does not apply. Lengths in mm unless named."""

    name: str
    rec_geodesic_deg: float | None = None
    rec_mpjpe_mm: float | None = None
    rec_pa_mpjpe_mm: float | None = None
    rec_v2v_mm: float | None = None
    separation_pct: float | None = None
    within_limits_pct: float | None = None
    apd_cm: float | None = None
    precision: float | None = None
    recall: float | None = None
    dnn_rad: float | None = None
    nearest_real_mm: float | None = None
    denoise_20_mm: float | None = None
    denoise_40_mm: float | None = None
    denoise_100_mm: float | None = None
    left_leg_best_mm: float | None = None
    left_leg_mean_mm: float | None = None
    legs_best_mm: float | None = None
    legs_mean_mm: float | None = None
    left_arm_best_mm: float | None = None
    left_arm_mean_mm: float | None = None


# (title, [(Row field, column header, format)]) of the printed tables.
TABLES: list[tuple[str, list[tuple[str, str, str]]]] = [
    (
        "Reconstruction of held-out poses",
        [
            ("rec_geodesic_deg", "geodesic (deg)", ".1f"),
            ("rec_mpjpe_mm", "MPJPE (mm)", ".1f"),
            ("rec_pa_mpjpe_mm", "PA-MPJPE (mm)", ".1f"),
            ("rec_v2v_mm", "V2V (mm)", ".1f"),
            ("separation_pct", "separation (%)", ".1f"),
        ],
    ),
    (
        "Samples",
        [
            ("within_limits_pct", "within limits (%)", ".1f"),
            ("apd_cm", "APD (cm)", ".2f"),
            ("precision", "precision", ".2f"),
            ("recall", "recall", ".2f"),
            ("dnn_rad", "dNN (rad)", ".2f"),
            ("nearest_real_mm", "nearest real (mm)", ".1f"),
        ],
    ),
    (
        "Denoising (MPJPE, mm) and completion (MPJPE of the hidden joints, mm; best / mean of the hypotheses)",
        [
            ("denoise_20_mm", "noise 20 mm", ".1f"),
            ("denoise_40_mm", "noise 40 mm", ".1f"),
            ("denoise_100_mm", "noise 100 mm", ".1f"),
            ("left_leg_best_mm", "left leg best", ".1f"),
            ("left_leg_mean_mm", "left leg mean", ".1f"),
            ("legs_best_mm", "legs best", ".1f"),
            ("legs_mean_mm", "legs mean", ".1f"),
            ("left_arm_best_mm", "left arm best", ".1f"),
            ("left_arm_mean_mm", "left arm mean", ".1f"),
        ],
    ),
]
PART_FIELDS = {"left leg": "left_leg", "legs": "legs", "left arm": "left_arm"}


@dataclass
class Settings:
    """How much to evaluate (the CLI's options)."""

    num_samples: int = 1000
    max_poses: int = 1000
    task_poses: int = 50
    hypotheses: int = 10
    gmm_poses: int = 10000
    iterations: int = 30
    seed: int = 0


@dataclass
class Candidate:
    """A prior under evaluation: what it can do (None where it cannot)."""

    name: str
    space: PoseSpace
    reconstruct: Callable[[torch.Tensor], torch.Tensor] | None
    sample: Callable[[int, int], torch.Tensor]
    cost: Callable[[torch.Tensor], torch.Tensor] | None


@torch.no_grad()
def pose_cost(
    model: VPoser, poses: torch.Tensor, kind: str = "elbo", mixture: GaussianMixture | None = None
) -> torch.Tensor:
    """How implausible the prior finds each pose: "mu" = ||E[z|x]||^2; "elbo" = KL(q||N(0,I))
    + ||R(decode(mu)) - R(x)||^2 / (2 REC_SIGMA^2), a negative-ELBO proxy; with a latent `mixture`
    its penalty at E[z|x] replaces the KL (the mixture in the poses' dtype)."""
    q = model.encode(poses)
    if kind == "mu":
        return q.mean.square().sum(-1)
    if mixture is not None:
        kl = mixture.penalty(q.mean)
    else:
        prior = torch.distributions.Normal(torch.zeros_like(q.mean), torch.ones_like(q.stddev))
        kl = torch.distributions.kl_divergence(q, prior).sum(-1)
    rec = (model.decode_rotmat(q.mean) - axis_angle_to_matrix(poses)).square().sum((-3, -2, -1))
    return kl + rec / (2 * REC_SIGMA**2)


def separation(cost, poses: torch.Tensor, seed: int) -> float:
    """% of poses cheaper than themselves with a random knee/elbow bent backwards by 60 deg."""
    gen = torch.Generator().manual_seed(seed)
    hinge = torch.randint(len(HINGE_FLEXION_AXES), (len(poses),), generator=gen)
    return 100.0 * (cost(poses) < cost(bend_backwards(poses, hinge))).float().mean().item()


@torch.no_grad()
def v2v_mm(body_model: torch.nn.Module, pred: torch.Tensor, target: torch.Tensor, batch: int = 256) -> float:
    """Mean vertex error (mm) of the body model posed by `pred` vs `target` (N, 21, 3)."""
    err = [
        (body_model(body_pose=p).vertices - body_model(body_pose=t).vertices).norm(dim=-1).mean(-1)
        for p, t in zip(pred.split(batch), target.split(batch))
    ]
    return 1000.0 * torch.cat(err).mean().item()


def vposer_candidate(name: str, model: VPoser, mixture: GaussianMixture | None = None) -> Candidate:
    """A VPoser with N(0, I) on its latent, or with a latent `mixture` (`prior.vposer.latent_mixture`)."""
    model = model.eval()
    own = copy.deepcopy(model)  # the space's, in the tasks' dtype; `model` keeps its own
    if mixture is None:
        space: VPoserSpace = VPoserSpace(own).to("cpu", DTYPE)
        sample = lambda n, seed: model.sample(n, seed=seed)  # noqa: E731
    else:
        space = LatentMixtureSpace(own, mixture).to("cpu", DTYPE)
        mixture = space.mixture  # in the space's dtype
        sample = lambda n, seed: model.decode(mixture.sample(n, seed))  # noqa: E731
    return Candidate(
        name,
        space,
        lambda poses: model.decode(model.encode(poses).mean),
        sample,
        lambda poses: pose_cost(model, poses, "elbo", mixture),
    )


def baseline_candidates(train_poses: torch.Tensor, settings: Settings, log: Callable[[str], None]) -> list[Candidate]:
    """The GMM, the PCA Gaussian (both fitted on `train_poses`) and no prior."""
    gen = torch.Generator().manual_seed(settings.seed)
    subset = train_poses[torch.randperm(len(train_poses), generator=gen)[: settings.gmm_poses]]
    t = time.perf_counter()
    gmm: GaussianMixture = fit_gmm(subset.reshape(len(subset), -1), components=GMM_COMPONENTS, seed=settings.seed)
    log(f"GMM: {GMM_COMPONENTS} components fitted on {len(subset)} training poses in {time.perf_counter() - t:.0f} s")
    pca = PCAGaussian(train_poses, PCA_COMPONENTS)
    return [
        Candidate(
            f"GMM ({GMM_COMPONENTS} full-covariance components)",
            GmmSpace(gmm),
            None,
            lambda n, seed: gmm.sample(n, seed).float().reshape(n, 21, 3),
            lambda poses: gmm.penalty(poses.reshape(len(poses), -1).double()),
        ),
        Candidate(f"PCA Gaussian ({PCA_COMPONENTS} components)", PCASpace(pca), pca.reconstruct, pca.sample, pca.cost),
        Candidate("no prior", PoseSpace(), None, uniform_poses, None),  # its "samples": uniform rotations
    ]


@torch.no_grad()
def evaluate_candidate(
    cand: Candidate,
    held_out: torch.Tensor,
    rest: torch.Tensor,
    anny: torch.nn.Module,
    settings: Settings,
    log: Callable[[str], None],
) -> Row:
    """Every metric of one prior (see the module docstring)."""
    t = time.perf_counter()
    row = Row(cand.name)
    real_j = smplx_forward_kinematics(held_out, rest)
    if cand.reconstruct is not None:
        rec = cand.reconstruct(held_out).float()
        rec_j = smplx_forward_kinematics(rec, rest)
        row.rec_geodesic_deg = torch.rad2deg(metrics.geodesic_error(rec, held_out)).mean().item()
        row.rec_mpjpe_mm = 1000.0 * metrics.mpjpe(rec_j, real_j).mean().item()
        row.rec_pa_mpjpe_mm = 1000.0 * metrics.pa_mpjpe(rec_j, real_j).mean().item()
        row.rec_v2v_mm = v2v_mm(anny, rec, held_out)
    if cand.cost is not None:
        row.separation_pct = separation(cand.cost, held_out, settings.seed)

    samples = cand.sample(settings.num_samples, settings.seed).float()
    sample_j = smplx_forward_kinematics(samples, rest)
    reference = held_out[: settings.num_samples]
    row.within_limits_pct = 100.0 * within_limits(samples).float().mean().item()
    row.apd_cm = 100.0 * metrics.apd(sample_j) if len(samples) > 1 else None
    if len(samples) > 3 and len(reference) > 3:
        row.precision, row.recall = metrics.precision_recall(reference.reshape(len(reference), -1), samples, k=3)
    row.dnn_rad = metrics.nearest_rotation_distance(samples, reference).mean().item()
    row.nearest_real_mm = 1000.0 * metrics.nearest_joint_distance(sample_j, real_j[: len(reference)]).mean().item()

    den, comp = task_errors(cand.space, real_j[: settings.task_poses], rest, settings)
    for mm, err in zip(NOISE_MM, den):
        setattr(row, f"denoise_{mm}_mm", 1000.0 * err.mean().item())
    for part, err in zip(metrics.BODY_PARTS, comp):
        setattr(row, f"{PART_FIELDS[part]}_best_mm", 1000.0 * err.min(-1).values.mean().item())
        setattr(row, f"{PART_FIELDS[part]}_mean_mm", 1000.0 * err.mean().item())
    log(f"{cand.name}: {time.perf_counter() - t:.0f} s")
    return row


def task_errors(
    space: PoseSpace, task_j: torch.Tensor, rest: torch.Tensor, settings: Settings
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pose errors (m) of a prior on the tasks: denoising (len(NOISE_MM), N) and completion of
    each of `metrics.BODY_PARTS` (parts, N, hypotheses), from the clean joints `task_j` (N, 22, 3)."""
    budget = Budget(iterations=settings.iterations)
    den = denoise(space, task_j, rest, [mm / 1000 for mm in NOISE_MM], settings.seed, budget=budget)
    parts = list(metrics.BODY_PARTS.values())
    return den, complete(space, task_j, rest, parts, settings.hypotheses, settings.seed, budget=budget)


def held_out_and_training(data_cfg: DictConfig, settings: Settings) -> tuple[torch.Tensor, torch.Tensor]:
    """The evaluation's held-out poses (a seeded subset of `settings.max_poses`) and all training poses."""
    train_poses, val_poses, _ = load_splits(data_cfg, seed=settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    return val_poses[torch.randperm(len(val_poses), generator=gen)[: settings.max_poses]], train_poses


@torch.no_grad()
def evaluate(
    model: VPoser,
    data_cfg: DictConfig,
    settings: Settings = Settings(),
    compare: tuple[str, VPoser] | None = None,
    name: str = "VPoser",
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True),
    mixture: GaussianMixture | None = None,
) -> list[Row]:
    """All rows of the tables: the priors (`model` also with its latent `mixture` when given), then
    the held-out real poses and the noisy inputs."""
    import body

    held_out, train_poses = held_out_and_training(data_cfg, settings)
    log(f"{len(held_out)} held-out poses, {len(train_poses)} training poses")
    anny = body.create("anny")
    rest = rest_joints(anny)

    candidates = [vposer_candidate(name, model)]
    if mixture is not None:
        candidates.append(vposer_candidate(f"{name} + latent GMM ({len(mixture.weights)} components)", model, mixture))
    if compare is not None:
        candidates.append(vposer_candidate(*compare))
    candidates += baseline_candidates(train_poses, settings, log)
    rows = [evaluate_candidate(c, held_out, rest, anny, settings, log) for c in candidates]

    reference = held_out[: settings.num_samples]
    real = Row(
        f"held-out real poses (n={len(reference)})",
        within_limits_pct=100.0 * within_limits(reference).float().mean().item(),
        apd_cm=100.0 * metrics.apd(smplx_forward_kinematics(reference, rest)) if len(reference) > 1 else None,
    )
    task_j = smplx_forward_kinematics(held_out[: settings.task_poses], rest)
    noisy = Row(f"noisy input, no recovery (n={len(task_j)})")
    for i, mm in enumerate(NOISE_MM):
        err = metrics.mpjpe(add_noise(task_j, mm / 1000, settings.seed + i), task_j)
        setattr(noisy, f"denoise_{mm}_mm", 1000.0 * err.mean().item())
    return rows + [real, noisy]


def _cell(value: float | str | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def markdown_tables(rows: list[Row]) -> str:
    """The rows as markdown tables ('-' where a metric does not apply; a row only in the tables
    where it has a value)."""
    out = []
    for title, columns in TABLES:
        lines = [f"{title}:", "", "| prior | " + " | ".join(h for _, h, _ in columns) + " |"]
        lines.append("|" + "---|" * (len(columns) + 1))
        for row in rows:
            values = [getattr(row, f) for f, _, _ in columns]
            if any(v is not None for v in values):
                lines.append(
                    f"| {row.name} | " + " | ".join(_cell(v, fmt) for v, (_, _, fmt) in zip(values, columns)) + " |"
                )
        out.append("\n".join(lines))
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="weights, official .ckpt or folder (default: shipped)"
    )
    parser.add_argument("--compare", type=Path, default=None, help="a second VPoser checkpoint to compare with")
    defaults = Settings()
    parser.add_argument("--samples", type=int, default=defaults.num_samples, help="poses drawn from each prior")
    parser.add_argument(
        "--max-poses", type=int, default=defaults.max_poses, help="held-out poses evaluated (random subset)"
    )
    parser.add_argument(
        "--task-poses", type=int, default=defaults.task_poses, help="held-out poses denoised and completed"
    )
    parser.add_argument("--hypotheses", type=int, default=defaults.hypotheses, help="completion starts per pose")
    parser.add_argument("--gmm-poses", type=int, default=defaults.gmm_poses, help="training poses of the GMM's EM")
    parser.add_argument(
        "--iterations", type=int, default=defaults.iterations, help="Levenberg-Marquardt iterations of the tasks"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is fastest for these small batched ops)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the rows as JSON here, and the arguments and data config beside it (.yaml)",
    )
    parser.add_argument(
        "--render", type=Path, default=None, help="also write prior.vposer.sample's grid PNG and interpolation GIF here"
    )
    parser.add_argument(
        "overrides", nargs="*", help="training config overrides (the data.* keys are used), e.g. data.fps=10"
    )
    args = parser.parse_args(argv)
    for key in ("samples", "max_poses", "task_poses", "hypotheses", "gmm_poses", "iterations", "threads"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1")
    try:
        data_cfg = checkpoint_config(args.checkpoint, args.overrides).data
        model = load(args.checkpoint)
        mixture = load_beside(args.checkpoint, model.latent_dim)
    except (OSError, ValueError) as e:
        parser.error(str(e))
    settings = Settings(
        args.samples, args.max_poses, args.task_poses, args.hypotheses, args.gmm_poses, args.iterations, args.seed
    )
    torch.set_num_threads(args.threads)
    weights = args.checkpoint or DEFAULT_CHECKPOINT
    compare = (f"VPoser {args.compare.name} (compared)", load(args.compare)) if args.compare else None
    t = time.perf_counter()
    rows = evaluate(model, data_cfg, settings, compare, name=f"VPoser {weights.name}", mixture=mixture)
    print(markdown_tables(rows))
    print(f"\n({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    if args.json:
        write_text(args.json, json.dumps([asdict(r) for r in rows], indent=2) + "\n")
        run = {
            **{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "checkpoint": str(weights),
            "data": data_cfg,
        }
        write_text(args.json.with_suffix(".yaml"), OmegaConf.to_yaml(run))
    if args.render:
        from prior.vposer.sample import main as sample_main

        sample_main(["--checkpoint", str(weights), "--out", str(args.render), "--seed", str(args.seed)])


if __name__ == "__main__":
    main()
