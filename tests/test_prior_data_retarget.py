"""Retargeting real mocap to SMPL-X body poses: positions, hinges, mirroring, forward kinematics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from body.rotations import axis_angle_to_matrix, geodesic_angle
from body.skeleton import BODY_JOINT_NAMES, BODY_MIRROR
from prior.data import (
    Motion,
    bone_direction_errors,
    load_motion,
    mirror_body_pose,
    mirror_motion,
    smplx_forward_kinematics,
)
from tests.prior_data_mocap import SHARED_MOCAP, bundled_mocap, mocap_subset

BUNDLED_SOURCES = {
    "snu_martial": ("snu_martial_bvh/snu_martial_arts/s_001_3_1.bvh", "snu_martial_bvh/snu_martial_arts/s_024_2_3.bvh"),
    "fair": ("fair_bvh/fair1_zombie.bvh", "fair_bvh/fair1_dab.bvh"),
}
SHARED_SOURCES = {
    "cmu_asf": ("cmu_asfamc/02/02_01.amc", "cmu_asfamc/02/02_03.amc"),
    "hdm05": (
        "hdm05_asfamc/bk/HDM_bk_hopBothLegs1hops_013_120.amc",
        "hdm05_asfamc/mm/HDM_mm_hopBothLegs1hops_031_120.amc",
        "hdm05_asfamc/mm/HDM_mm_rotateArmsBothBackward1Reps_013_120.amc",
    ),
    "cmu_bvh": ("cmu_bvh/martial/04.bvh", "cmu_bvh/indian/13.bvh"),
}  # fmt: skip
# The bundled sources, and the CMU and HDM05 ones where the full archives are present.
SOURCES = BUNDLED_SOURCES | (SHARED_SOURCES if SHARED_MOCAP.is_dir() else {})
J = BODY_JOINT_NAMES.index


@pytest.fixture(scope="module")
def motions() -> dict[str, list[Motion]]:
    def root(name: str) -> Path:
        return bundled_mocap() if name in BUNDLED_SOURCES else mocap_subset(SHARED_MOCAP)

    return {name: [load_motion(root(name) / f) for f in files] for name, files in SOURCES.items()}


@pytest.mark.parametrize("source", SOURCES)
def test_fk_of_retargeted_pose_reproduces_source_joints(motions: dict, source: str) -> None:
    errors = np.concatenate([bone_direction_errors(m)[0].ravel() for m in motions[source]])
    median, p95 = np.median(errors), np.percentile(errors, 95)
    print(f"{source}: bone direction error median {median:.2e} deg, p95 {p95:.2e} deg over {errors.size} bones")
    assert median < 2.0 and p95 < 5.0
    for m in motions[source]:
        fk = smplx_forward_kinematics(m.body_pose, m.rest_joints, m.root_orient).numpy()
        placed = fk - fk[:, :1] + m.transl[:, None]
        # Metres; not exact where one SMPL-X bone spans two source segments (ASF lowerneck +
        # upperneck): the bone keeps its direction, but the source chord's length varies a little.
        assert np.abs(placed - m.joints).max() < 1e-2
        # The check can fail: 4 deg of pose noise shows up at once.
        noise = np.random.default_rng(0).normal(0, 0.04, m.body_pose.shape).astype(np.float32)
        noisy = replace(m, body_pose=m.body_pose + noise)
        assert np.median(bone_direction_errors(noisy)[0]) > 2.0


@pytest.mark.parametrize("source", SOURCES)
def test_knees_and_elbows_bend_about_their_hinge(motions: dict, source: str) -> None:
    pose = np.concatenate([m.body_pose for m in motions[source]])
    for joint, axis, flexion_sign in (
        ("left_knee", 0, 1), ("right_knee", 0, 1), ("left_elbow", 1, -1), ("right_elbow", 1, 1),
    ):  # fmt: skip
        aa = pose[:, J(joint) - 1]
        angle = np.linalg.norm(aa, axis=-1)
        bent = angle > np.radians(20)
        assert bent.sum() > 30, f"{source} {joint}: too few bent frames to judge"
        unit = aa[bent] / angle[bent, None]
        share = np.abs(unit[:, axis])
        print(f"{source} {joint}: mean |axis[{axis}]| {share.mean():.3f} over {bent.sum()} frames")
        assert share.mean() > 0.95 and np.percentile(share, 5) > 0.8
        # Flexion, never hyperextension: SMPL-X knees bend +x, the left elbow -y, the right +y.
        assert (np.sign(unit[:, axis]) == flexion_sign).mean() > 0.97


def test_mirrored_pose_fk_is_the_reflected_fk(motions: dict) -> None:
    for m in (ms[0] for ms in motions.values()):
        m = m.select(slice(0, None, 10))
        mirrored = mirror_motion(m)
        fk = smplx_forward_kinematics(m.body_pose, m.rest_joints, m.root_orient)
        fk_mirrored = smplx_forward_kinematics(mirrored.body_pose, mirrored.rest_joints, mirrored.root_orient)
        reflected = fk[:, list(BODY_MIRROR)] * torch.tensor([-1.0, 1.0, 1.0])
        assert torch.allclose(fk_mirrored, reflected, atol=1e-5)
        assert np.allclose(mirrored.joints, m.joints[:, list(BODY_MIRROR)] * [-1, 1, 1])
        assert np.allclose(mirror_body_pose(mirror_body_pose(m.body_pose)), m.body_pose)
        as_tensor = mirror_body_pose(torch.from_numpy(m.body_pose))
        assert torch.allclose(as_tensor, torch.from_numpy(mirrored.body_pose))


def test_smplx_forward_kinematics_convention() -> None:
    rest = torch.zeros(22, 3)
    for name, pos in {
        "left_hip": (0.1, -0.1, 0), "left_knee": (0.1, -0.5, 0), "left_ankle": (0.1, -0.9, 0),
        "left_shoulder": (0.2, 0.4, 0), "left_elbow": (0.5, 0.4, 0), "left_wrist": (0.75, 0.4, 0),
        "spine3": (0, 0.3, 0), "left_collar": (0.07, 0.35, 0),
    }.items():  # fmt: skip
        rest[J(name)] = torch.tensor(pos)
    pose = torch.zeros(2, 21, 3)
    pose[0, J("left_elbow") - 1] = torch.tensor([0.0, -np.pi / 2, 0.0])  # hand forward (+z)
    pose[0, J("left_knee") - 1] = torch.tensor([np.pi / 2, 0.0, 0.0])  # foot backward (-z)
    root = torch.tensor([[0.0, 0.0, 0.0], [0.0, np.pi, 0.0]])
    joints = smplx_forward_kinematics(pose, rest, root)
    assert joints.shape == (2, 22, 3)
    assert torch.allclose(joints[0, J("left_wrist")], torch.tensor([0.5, 0.4, 0.25]), atol=1e-6)
    assert torch.allclose(joints[0, J("left_ankle")], torch.tensor([0.1, -0.5, -0.4]), atol=1e-6)
    assert torch.allclose(joints[1, J("left_wrist")], torch.tensor([-0.75, 0.4, 0.0]), atol=1e-6)  # turned 180
    # Batched leading dims, flat (..., 63) poses, per-sample rest skeletons, gradients.
    flat = pose.reshape(2, 63).requires_grad_()
    batched = smplx_forward_kinematics(
        flat[None].expand(3, 2, 63), rest.expand(3, 2, 22, 3), root[None].expand(3, 2, 3)
    )
    assert torch.allclose(batched[1], joints, atol=1e-6)
    batched.sum().backward()
    assert flat.grad is not None and torch.isfinite(flat.grad).all()


def test_retargeted_rest_skeleton_is_a_tpose(motions: dict) -> None:
    for name, ms in motions.items():
        rest = torch.tensor(ms[0].rest_joints)
        for joint, child, direction in (
            ("left_hip", "left_knee", (0, -1, 0)), ("left_knee", "left_ankle", (0, -1, 0)),
            ("right_shoulder", "right_elbow", (-1, 0, 0)), ("left_elbow", "left_wrist", (1, 0, 0)),
            ("spine3", "neck", (0, 1, 0)),
        ):  # fmt: skip
            bone = rest[J(child)] - rest[J(joint)]
            assert torch.allclose(bone / bone.norm(), torch.tensor(direction, dtype=bone.dtype), atol=1e-5), (
                name,
                joint,
            )
        # Consecutive frames (at about 30 fps) differ little: no flips from the retargeting itself.
        rot = axis_angle_to_matrix(torch.tensor(ms[0].body_pose[:: max(1, round(ms[0].fps / 30))]))
        step = torch.rad2deg(geodesic_angle(rot[1:], rot[:-1]))
        assert torch.quantile(step.flatten(), 0.99) < 30, name
