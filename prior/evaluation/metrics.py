"""Metrics of pose priors, as the pose-prior literature measures them (Pose-NDF, NRDF, DPoser, DPoser-X).

Joint positions are (N, J, 3) tensors in metres; results are in the unit stated by each function.

- `mpjpe`, `pa_mpjpe`: mean per-joint position error, before / after a per-pose similarity
  (Procrustes: rotation, translation and scale) alignment of the prediction to the target.
- `apd`: average pairwise distance of generated poses (diversity). DPoser's
  `average_pairwise_distance` and NRDF's `calculate_apd`: for every unordered pair of samples the
  mean over joints of the Euclidean joint distance, averaged over pairs. Both compute it in metres
  on the 22 SMPL body joints and NRDF prints it x100, in cm; the published numbers (VPoser on
  AMASS 10.75) are cm.
- `precision_recall`: the k-nearest-neighbour manifold precision and recall (Kynkaanniemi et al.
  2019, in the PRDC form of Naeem et al. 2020 that DPoser's `compute_prdc_torch` implements, k = 3):
  precision = share of generated samples inside the k-NN ball of at least one real sample; recall =
  share of real samples inside the k-NN ball of at least one generated sample (a ball's radius is
  the distance to the k-th nearest neighbour within its own set).
- `nearest_rotation_distance`: DPoser's dNN (`evaluate_dnn`, measure "rotation"): for each
  sample, the smallest over real poses of the summed per-joint geodesic angles (radians).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from body.rotations import axis_angle_to_matrix, geodesic_angle
from body.skeleton import BODY_JOINT_NAMES

# Body parts hidden in the completion task: DPoser's BodyPartIndices, as joints 0..21 (pelvis = 0).
_JOINT = {name: i for i, name in enumerate(BODY_JOINT_NAMES)}
LEFT_LEG = tuple(_JOINT[n] for n in ("left_hip", "left_knee", "left_ankle", "left_foot"))
RIGHT_LEG = tuple(_JOINT[n] for n in ("right_hip", "right_knee", "right_ankle", "right_foot"))
LEFT_ARM = tuple(_JOINT[n] for n in ("left_collar", "left_shoulder", "left_elbow", "left_wrist"))
BODY_PARTS: dict[str, tuple[int, ...]] = {
    "left leg": LEFT_LEG,
    "legs": tuple(sorted(LEFT_LEG + RIGHT_LEG)),
    "left arm": LEFT_ARM,
}


def per_joint_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, J, 3) x2 -> (N, J) Euclidean distances."""
    return (pred - target).norm(dim=-1)


def mpjpe(pred: torch.Tensor, target: torch.Tensor, joints: Sequence[int] | None = None) -> torch.Tensor:
    """(N,) mean per-joint position error over all joints, or over `joints` only."""
    err = per_joint_error(pred, target)
    return (err if joints is None else err[:, list(joints)]).mean(-1)


def procrustes_align(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`pred` (N, J, 3) moved by the similarity transform (s R x + t) that best fits it to `target`
    in least squares (Umeyama), per pose."""
    mu_p, mu_t = pred.mean(-2, keepdim=True), target.mean(-2, keepdim=True)
    p, t = pred - mu_p, target - mu_t
    u, s, vh = torch.linalg.svd(p.transpose(-1, -2) @ t)  # (N, 3, 3): sum_j p_j t_j^T
    d = torch.ones_like(s)
    d[..., -1] = torch.sign(torch.linalg.det(u @ vh))  # no reflection
    rot = u @ torch.diag_embed(d) @ vh  # p_aligned = p @ rot
    scale = (s * d).sum(-1) / p.square().sum((-2, -1)).clamp_min(1e-12)
    return scale[:, None, None] * p @ rot + mu_t


def pa_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N,) MPJPE after the per-pose Procrustes alignment of `pred` to `target`."""
    return mpjpe(procrustes_align(pred, target), target)


def geodesic_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, J) axis-angle (N, J, 3) x2 -> geodesic angle (radians) between the rotations of each joint."""
    return geodesic_angle(axis_angle_to_matrix(pred), axis_angle_to_matrix(target))


def _rows_per_chunk(other: int, width: int, budget: int = 1 << 22) -> int:
    """How many rows to compare at once with `other` rows of `width` numbers each (memory bound)."""
    return max(1, budget // max(1, other * width))


def apd(joints: torch.Tensor) -> float:
    """Average pairwise distance of (N, J, 3) poses, N >= 2: the mean over the N (N - 1) / 2 pairs of
    the mean per-joint distance; in the unit of `joints`."""
    n = len(joints)
    if n < 2:
        raise ValueError("APD needs at least two poses")
    total = 0.0
    for block in joints.split(_rows_per_chunk(n, joints[0].numel())):
        total += (block[:, None] - joints[None]).norm(dim=-1).mean(-1).sum().item()  # each pair twice, diagonal 0
    return total / (n * (n - 1))


def _kth_neighbour_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N,) distance from each row of x (N, D) to its k-th nearest other row."""
    if len(x) <= k:
        raise ValueError(f"k-NN radii need more than k = {k} points, got {len(x)}")
    chunk = _rows_per_chunk(len(x), 1)
    return torch.cat([torch.cdist(block, x).kthvalue(k + 1, dim=-1).values for block in x.split(chunk)])  # +1: self


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """k-NN manifold precision and recall of `fake` (M, ...) against `real` (N, ...) features
    (flattened per row)."""
    real, fake = real.reshape(len(real), -1).double(), fake.reshape(len(fake), -1).double()
    r_real, r_fake = _kth_neighbour_radius(real, k), _kth_neighbour_radius(fake, k)
    fake_covered = torch.zeros(len(fake), dtype=torch.bool)
    real_covered = []
    chunk = _rows_per_chunk(len(fake), 1)
    for block, radius in zip(real.split(chunk), r_real.split(chunk)):
        dist = torch.cdist(block, fake)  # (b, M)
        fake_covered |= (dist < radius[:, None]).any(0)
        real_covered.append((dist < r_fake[None, :]).any(1))
    return fake_covered.double().mean().item(), torch.cat(real_covered).double().mean().item()


def _quaternions(body_pose: torch.Tensor) -> torch.Tensor:
    """(N, J, 3) axis-angle -> (N, J, 4) unit quaternions (w, x, y, z)."""
    angle = body_pose.norm(dim=-1, keepdim=True)
    axis = body_pose / angle.clamp_min(1e-12)
    return torch.cat([torch.cos(angle / 2), axis * torch.sin(angle / 2)], -1)


def nearest_rotation_distance(samples: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(M,) for each sample pose (M, J, 3) the smallest over `real` (N, J, 3) of the summed
    per-joint geodesic angles 2 acos |q_a . q_b| (radians)."""
    qs, qr = _quaternions(samples.double()), _quaternions(real.double())
    best = []
    for block in qs.split(_rows_per_chunk(len(qr), qr[0].numel())):
        dot = torch.einsum("mjc,njc->mnj", block, qr).abs().clamp(max=1.0)
        best.append((2 * torch.arccos(dot)).sum(-1).min(1).values)
    return torch.cat(best)


def nearest_joint_distance(samples: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """(M,) for each sample's joints (M, J, 3) the smallest over `real` (N, J, 3) of the mean
    per-joint distance, in the unit of the joints."""
    chunk = _rows_per_chunk(len(real), real[0].numel())
    return torch.cat([(s[:, None] - real[None]).norm(dim=-1).mean(-1).min(1).values for s in samples.split(chunk)])
