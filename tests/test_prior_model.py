"""VPoser v2 architecture (official layout, 6D decoding, encode/decode/sample) and joint limits."""

from __future__ import annotations

import pytest
import torch

from body.rotations import axis_angle_to_matrix
from prior.data.mirror import mirror_body_pose
from prior.evaluation.limits import POSE_INDEX, bend_backwards, joint_violations, within_limits
from prior.vposer.model import VPoser

# State-dict keys of the published VPoser v2 (V02_05) model, without the `vp_model.` prefix.
OFFICIAL_KEYS = (
    [f"encoder_net.1.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    + ["encoder_net.2.weight", "encoder_net.2.bias"]
    + [f"encoder_net.4.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    + ["encoder_net.6.weight", "encoder_net.6.bias", "encoder_net.7.weight", "encoder_net.7.bias"]
    + ["encoder_net.8.mu.weight", "encoder_net.8.mu.bias", "encoder_net.8.logvar.weight", "encoder_net.8.logvar.bias"]
    + [f"decoder_net.{i}.{k}" for i in (0, 3, 5) for k in ("weight", "bias")]
)


def test_layout_matches_published_vposer_v2():
    model = VPoser()
    assert sorted(model.state_dict()) == sorted(OFFICIAL_KEYS)
    assert sum(p.numel() for p in model.parameters()) == 936_252  # ~0.94 M
    assert model.decoder_net[5].out_features == 126 and model.encoder_net[8].mu.out_features == 32


def test_6d_columns_are_gram_schmidt_of_a_3x2_view():
    """Each joint's 6 numbers are a row-major 3x2 matrix whose columns give b1, b2 (official layout)."""
    x = torch.randn(5, 126)
    rot = VPoser().decoder_net[6](x)
    m = x.view(-1, 3, 2)
    b1 = torch.nn.functional.normalize(m[:, :, 0], dim=1)
    b2 = torch.nn.functional.normalize(m[:, :, 1] - (b1 * m[:, :, 1]).sum(1, keepdim=True) * b1, dim=1)
    expected = torch.stack([b1, b2, torch.cross(b1, b2, dim=1)], dim=-1).view(5, 21, 3, 3)
    torch.testing.assert_close(rot, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rot @ rot.transpose(-1, -2), torch.eye(3).expand(5, 21, 3, 3), atol=1e-5, rtol=0)


def test_encode_decode_forward_shapes_and_consistency():
    torch.manual_seed(0)
    model = VPoser().eval()
    pose = 0.3 * torch.randn(4, 21, 3)
    q = model.encode(pose)
    assert isinstance(q, torch.distributions.Normal) and q.mean.shape == (4, 32) and (q.stddev > 0).all()
    torch.testing.assert_close(model.encode(pose.reshape(4, 63)).mean, q.mean)
    out = model(pose, sample=False)
    assert out.body_pose.shape == (4, 21, 3) and out.rotmat.shape == (4, 21, 3, 3)
    torch.testing.assert_close(model.decode(q.mean), out.body_pose)
    torch.testing.assert_close(axis_angle_to_matrix(out.body_pose), out.rotmat, atol=1e-5, rtol=1e-5)


def test_sample_is_seeded_finite_and_keeps_the_mode():
    model = VPoser().train()
    a, b = model.sample(6, seed=3), model.sample(6, seed=3)
    assert a.shape == (6, 21, 3) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, model.sample(6, seed=4))
    assert model.training


def one_joint(joint: str, degrees: tuple[float, float, float]) -> torch.Tensor:
    pose = torch.zeros(1, 21, 3)
    pose[0, POSE_INDEX[joint]] = torch.deg2rad(torch.tensor(degrees))
    return pose


@pytest.mark.parametrize(
    "joint, degrees, ok",
    [
        ("left_knee", (90, 0, 0), True),
        ("right_knee", (120, 0, 0), True),
        ("left_knee", (-30, 0, 0), False),
        ("right_knee", (-30, 0, 0), False),
        ("left_elbow", (0, -90, 0), True),
        ("right_elbow", (0, 90, 0), True),
        ("left_elbow", (0, 40, 0), False),
        ("right_elbow", (0, -40, 0), False),
        ("left_hip", (-90, 0, 0), True),
        ("left_hip", (90, 0, 0), False),
        ("right_hip", (0, 0, 60), False),
        ("left_shoulder", (0, 0, -80), True),
        ("right_shoulder", (0, 0, 80), True),
        ("left_shoulder", (0, -90, 0), True),
        ("left_shoulder", (0, 90, 0), False),
        ("right_shoulder", (0, -90, 0), False),
        ("spine2", (30, 0, 0), True),
        ("spine2", (-70, 0, 0), False),
        ("neck", (0, 100, 0), False),
    ],
)
def test_joint_limits_on_single_joint_poses(joint, degrees, ok):
    assert bool(within_limits(one_joint(joint, degrees))[0]) == ok
    assert bool(within_limits(mirror_body_pose(one_joint(joint, degrees)))[0]) == ok  # left/right symmetric


def test_bend_backwards_breaks_only_that_hinge():
    bent = bend_backwards(torch.zeros(4, 21, 3), torch.arange(4))
    assert within_limits(torch.zeros(1, 21, 3)).all() and not within_limits(bent).any()
    broken = joint_violations(bent).nonzero()[:, 1].tolist()
    assert broken == [POSE_INDEX[n] for n in ("left_knee", "right_knee", "left_elbow", "right_elbow")]
