"""Prior evaluation metrics and recovery tasks on tiny synthetic cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from body.rotations import axis_angle_to_matrix
from prior.data.fk import RestSkeleton
from prior.evaluation import metrics
from prior.evaluation.baselines import PCAGaussian
from prior.evaluation.evaluate import Row, markdown_tables
from prior.evaluation.tasks import complete, denoise
from prior.pose_spaces import PoseSpace

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def rest() -> torch.Tensor:
    """A made-up T-pose skeleton (22, 3) in metres, SMPL-X-like proportions and parents."""
    joints = torch.tensor(
        [
            [0.0, 0.0, 0.0],  # pelvis
            [0.09, -0.08, 0.0],
            [-0.09, -0.08, 0.0],
            [0.0, 0.10, 0.0],
            [0.10, -0.48, 0.0],  # left knee
            [-0.10, -0.48, 0.0],
            [0.0, 0.24, 0.0],
            [0.10, -0.88, 0.0],  # left ankle
            [-0.10, -0.88, 0.0],
            [0.0, 0.30, 0.0],
            [0.11, -0.93, 0.12],  # left foot
            [-0.11, -0.93, 0.12],
            [0.0, 0.52, 0.0],
            [0.08, 0.42, 0.0],  # left collar
            [-0.08, 0.42, 0.0],
            [0.0, 0.62, 0.03],
            [0.18, 0.44, 0.0],  # left shoulder
            [-0.18, 0.44, 0.0],
            [0.44, 0.44, 0.0],  # left elbow
            [-0.44, 0.44, 0.0],
            [0.69, 0.44, 0.0],  # left wrist
            [-0.69, 0.44, 0.0],
        ]
    )
    return joints


def random_poses(n: int, std: float, seed: int) -> torch.Tensor:
    return std * torch.randn(n, 21, 3, generator=torch.Generator().manual_seed(seed))


def test_apd_is_the_mean_over_pairs_of_the_mean_joint_distance():
    a = torch.zeros(1, 2, 3)
    b = torch.tensor([[[3.0, 0, 0], [0, 4.0, 0]]])  # joint distances 3 and 4 -> pose distance 3.5
    assert metrics.apd(torch.cat([a, b])) == pytest.approx(3.5)
    line = torch.tensor([0.0, 1.0, 3.0])[:, None, None] * torch.tensor([1.0, 0, 0])  # pairs 1, 3, 2
    assert metrics.apd(line) == pytest.approx(2.0)
    assert metrics.apd(torch.cat([line] * 3)) == pytest.approx(108 / 72)  # repeated poses: pairs at distance 0 count
    with pytest.raises(ValueError):
        metrics.apd(a)


def test_precision_recall_with_hand_made_sets():
    real = torch.tensor([0.0, 1.0, 2.0, 3.0])[:, None]  # 1-NN radius 1 around each
    fake = torch.tensor([0.05, 0.2, 10.0, 10.2])[:, None]  # 1-NN radii 0.15, 0.15, 0.2, 0.2
    precision, recall = metrics.precision_recall(real, fake, k=1)
    assert precision == pytest.approx(0.5)  # 0.05 and 0.2 lie in a real ball; 10 and 10.2 do not
    assert recall == pytest.approx(0.25)  # only the real 0 lies in a fake ball (0.05 +- 0.15)
    same = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    assert metrics.precision_recall(same, same.clone()) == (1.0, 1.0)
    assert metrics.precision_recall(same, same + 100.0) == (0.0, 0.0)


def test_pa_mpjpe_ignores_a_similarity_transform_but_not_a_reflection():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 22, 3, generator=gen, dtype=torch.float64)
    rot = axis_angle_to_matrix(torch.randn(5, 3, generator=gen, dtype=torch.float64))
    y = 1.7 * x @ rot.transpose(-1, -2) + torch.tensor([0.3, -2.0, 5.0], dtype=torch.float64)
    assert metrics.mpjpe(y, x).min() > 0.1
    torch.testing.assert_close(metrics.pa_mpjpe(y, x), torch.zeros(5, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(metrics.procrustes_align(y, x), x)
    mirrored = x * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert metrics.pa_mpjpe(mirrored, x).min() > 0.05
    noisy = x + 0.1 * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    assert (metrics.pa_mpjpe(noisy, x) <= metrics.mpjpe(noisy, x) + 1e-12).all()


def test_mpjpe_counts_only_the_named_joints_and_geodesic_error_is_the_angle():
    target = torch.zeros(2, 22, 3)
    pred = target.clone()
    pred[:, 5, 0] = 0.22  # one joint off by 0.22
    assert metrics.mpjpe(pred, target).tolist() == pytest.approx([0.01, 0.01])
    assert metrics.mpjpe(pred, target, joints=[1, 4, 7]).tolist() == [0.0, 0.0]
    assert metrics.mpjpe(pred, target, joints=[5, 6]).tolist() == pytest.approx([0.11, 0.11])
    pose = torch.zeros(1, 21, 3)
    bent = pose.clone()
    bent[0, 3] = torch.tensor([0.0, 0.0, 0.7])
    err = metrics.geodesic_error(bent, pose)
    assert err[0, 3].item() == pytest.approx(0.7, abs=1e-3) and err[0, [0, 1, 2, 4]].abs().max() < 1e-3


def test_nearest_rotation_distance_sums_joint_angles_to_the_closest_real_pose():
    real = torch.zeros(2, 21, 3)
    real[1, :, 0] = 1.0  # every joint turned 1 rad about x
    sample = torch.zeros(1, 21, 3)
    sample[0, 4, 0] = 0.5  # one joint 0.5 rad away from the first real pose
    assert metrics.nearest_rotation_distance(sample, real).item() == pytest.approx(0.5, abs=1e-6)
    assert metrics.nearest_rotation_distance(real, real).abs().max() < 1e-6
    # a full turn is the identity rotation: distance 0, as for quaternions q and -q
    assert metrics.nearest_rotation_distance(torch.full((1, 21, 3), 2 * math.pi / math.sqrt(3)), real[:1]).item() < 1e-3
    joints = torch.zeros(3, 22, 3)
    joints[1] += 1.0
    assert metrics.nearest_joint_distance(joints[2:] + 0.1, joints[:2]).item() == pytest.approx(0.1 * math.sqrt(3))


def test_denoising_without_noise_and_prior_recovers_the_joints(rest):
    clean = RestSkeleton(rest)(axis_angle_to_matrix(random_poses(6, 0.3, 0)))
    exact, noisy = denoise(PoseSpace(), clean, rest, [0.0, 0.02], seed=0) * 1000  # mm
    assert exact.max() < 1.0, exact
    noise = 0.02 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))  # denoise's seed + 1
    assert noisy.mean() < 1000 * metrics.mpjpe(clean + noise, clean).mean()  # fixed bone lengths remove some noise


class RestStart(PoseSpace):
    """No prior, every hypothesis starting exactly at the rest pose."""

    start_std = 0.0


def test_completion_error_is_measured_on_the_hidden_joints_only(rest):
    poses = random_poses(4, 0.3, 1)
    left_leg = [1, 4, 7, 10]  # joints of the left hip, knee, ankle, foot; their body_pose rows are joint - 1
    left_arm = [13, 16, 18, 20]
    poses[:, [j - 1 for j in left_leg + left_arm]] = 0.0  # left leg and arm at rest, where the starts are
    clean = RestSkeleton(rest)(axis_angle_to_matrix(poses))
    err = complete(RestStart(), clean, rest, [metrics.LEFT_LEG], hypotheses=2, seed=0)
    assert err.shape == (1, 4, 2) and err.abs().max() < 1e-6  # the visible joints' fit does not count
    moved = poses.clone()
    moved[:, 3] = torch.tensor([1.0, 0.0, 0.0])  # left knee bent (body_pose row 3 = joint 4): hidden
    clean_moved = RestSkeleton(rest)(axis_angle_to_matrix(moved))
    err = complete(RestStart(), clean_moved, rest, [metrics.LEFT_LEG, metrics.LEFT_ARM], hypotheses=1, seed=0)
    leg_at_rest = metrics.mpjpe(clean, clean_moved, metrics.LEFT_LEG)  # the leg stays at rest, hidden
    torch.testing.assert_close(err[0, :, 0], leg_at_rest, atol=1e-5, rtol=0)
    assert leg_at_rest.min() > 0.05
    # arm hidden, leg visible: the bent knee is fitted; the arm, at rest in both, is exact
    assert err[1].abs().max() < 1e-3


def test_pca_gaussian_reconstructs_its_subspace_and_prefers_its_mean():
    gen = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(63, 2, generator=gen))[0]
    coef = torch.randn(500, 2, generator=gen) * torch.tensor([0.5, 0.2])
    poses = (0.1 + coef @ basis.T + 1e-4 * torch.randn(500, 63, generator=gen)).reshape(500, 21, 3)
    pca = PCAGaussian(poses, k=2)
    torch.testing.assert_close(pca.reconstruct(poses), poses, atol=1e-3, rtol=0)
    assert pca.sample(7, seed=0).shape == (7, 21, 3)
    off = poses[:1] + 0.05 * torch.randn(1, 21, 3, generator=gen)
    assert pca.cost(pca.mean.float().reshape(1, 21, 3)) < pca.cost(poses[:1]) < pca.cost(off)
    w = pca.encode(poses)
    assert w.std(0).tolist() == pytest.approx([1.0, 1.0], abs=0.1)  # whitened coefficients


def test_tables_show_dashes_and_skip_rows_without_values():
    rows = [Row("A", rec_mpjpe_mm=12.345), Row("B", apd_cm=1.5, precision=0.25)]
    text = markdown_tables(rows)
    assert "| A | - | 12.3 | - | - | - |" in text
    assert "| B | - | 1.50 | 0.25 | - | - | - |" in text
    assert text.count("| A |") == 1 and text.count("| B |") == 1


class TwinVariable(PoseSpace):
    """No prior; a 64th variable that adds to the first axis-angle component: two identical Jacobian
    columns, so J^T J is singular and only the damping keeps the LM system solvable."""

    dim = 64

    def body_pose(self, v: torch.Tensor) -> torch.Tensor:
        return (v[:, :63] + torch.nn.functional.pad(v[:, 63:], (0, 62))).reshape(-1, 21, 3)


def test_recovery_survives_a_singular_system(rest):
    clean = RestSkeleton(rest)(axis_angle_to_matrix(random_poses(8, 0.3, 2)))
    err = denoise(TwinVariable(), clean, rest, [0.0]) * 1000  # mm; the damping shrinks to where J^T J rounds
    assert torch.isfinite(err).all() and err.max() < 1.0, err
