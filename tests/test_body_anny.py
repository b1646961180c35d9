"""Anny back end: SMPL-X convention, retarget against an independent FK, gradients, the BodyModel contract."""

from __future__ import annotations

import math

import pytest
import torch

import body
from body.anny_body import REST_CACHE_SIZE
from body.base import ANNY_PHENOTYPES
from body.keypoint_sets import COCO17, MEDIAPIPE33
from body.rotations import axis_angle_to_matrix
from body.skeleton import BODY_JOINT_NAMES, BODY_PARENTS

J = {n: i for i, n in enumerate(BODY_JOINT_NAMES)}


def pose_with(joint: str, aa: tuple[float, float, float]) -> torch.Tensor:
    """A body_pose (1, 21, 3) that rotates one joint."""
    pose = torch.zeros(1, 21, 3)
    pose[0, J[joint] - 1] = torch.tensor(aa)
    return pose


def test_zero_pose_is_smplx_t_pose(anny_body):
    out = anny_body()
    j = out.joints[0]
    # Upright along +y: head above pelvis above ankles.
    assert j[J["head"], 1] > j[J["pelvis"], 1] + 0.4 > j[J["left_ankle"], 1] + 1.0
    # Arms horizontal: wrists within 3 cm of shoulder height, left wrist at +x.
    for side in ("left", "right"):
        assert abs(j[J[f"{side}_wrist"], 1] - j[J[f"{side}_shoulder"], 1]) < 0.03
    assert j[J["left_wrist"], 0] > 0.5 and j[J["right_wrist"], 0] < -0.5
    # The face looks toward +z: nose in front of the head joint and the ears.
    kp = out.keypoints("coco17")[0]
    nose, lear = kp[COCO17.index("nose")], kp[COCO17.index("left_ear")]
    assert nose[2] > j[J["head"], 2] + 0.05 and nose[2] > lear[2] + 0.05
    assert lear[0] > 0  # the subject's left ear is on the +x side


def test_single_joint_poses_move_the_right_limb(anny_body):
    rest = anny_body().joints[0]
    # Knee: +90 deg about x maps the shin direction (0,-1,0) to (0,0,-1): ankle behind.
    j = anny_body(body_pose=pose_with("left_knee", (math.pi / 2, 0, 0))).joints[0]
    shin = rest[J["left_ankle"], 1] - rest[J["left_knee"], 1]
    assert j[J["left_ankle"], 2] < j[J["left_knee"], 2] + 0.8 * shin  # shin is negative: ankle ~|shin| behind
    assert j[J["right_ankle"]].sub(rest[J["right_ankle"]]).norm() < 1e-5
    # Hip: -90 deg about x maps (0,-1,0) to (0,0,+1): the leg swings forward.
    j = anny_body(body_pose=pose_with("left_hip", (-math.pi / 2, 0, 0))).joints[0]
    assert j[J["left_ankle"], 2] - j[J["left_hip"], 2] > 0.7
    # Shoulder: -90 deg about z maps (+1,0,0) to (0,-1,0): the left arm hangs by the hip.
    j = anny_body(body_pose=pose_with("left_shoulder", (0, 0, -math.pi / 2))).joints[0]
    assert j[J["left_wrist"], 1] < j[J["left_shoulder"], 1] - 0.45
    assert abs(j[J["left_wrist"], 0] - j[J["left_shoulder"], 0]) < 0.06
    # Elbow: -90 deg about y maps (+1,0,0) to (0,0,+1): the forearm points forward.
    j = anny_body(body_pose=pose_with("left_elbow", (0, -math.pi / 2, 0))).joints[0]
    assert j[J["left_wrist"], 2] - j[J["left_elbow"], 2] > 0.2
    # global_orient: 180 deg about y turns the body to face -z.
    out = anny_body(global_orient=torch.tensor([[0.0, math.pi, 0.0]]))
    assert out.keypoints("coco17")[0, 0, 2] < -0.05


def reference_fk(global_orient: torch.Tensor, body_pose: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """Plain SMPL-X forward kinematics of the 22-joint tree: (B, 22, 3) positions."""
    rots = axis_angle_to_matrix(torch.cat([global_orient[:, None], body_pose], dim=1))
    glob, pos = [rots[:, 0]], [rest[0].expand(rots.shape[0], 3)]
    for j in range(1, 22):
        p = BODY_PARENTS[j]
        glob.append(glob[p] @ rots[:, j])
        pos.append(pos[p] + (glob[p] @ (rest[j] - rest[p])[:, None])[..., 0])
    return torch.stack(pos, dim=1)


def limb_angles_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle between each bone (parent -> child) direction of two (B, 22, 3) skeletons."""
    idx = torch.arange(1, 22)
    par = torch.tensor(BODY_PARENTS[1:])
    da = torch.nn.functional.normalize(a[:, idx] - a[:, par], dim=-1)
    db = torch.nn.functional.normalize(b[:, idx] - b[:, par], dim=-1)
    return torch.rad2deg(torch.arccos((da * db).sum(-1).clamp(-1, 1)))


def test_retarget_matches_independent_smplx_fk(anny_body, request):
    from tests.pose_samples import held_out_body_poses

    body_pose = held_out_body_poses(300)
    global_orient = torch.randn(body_pose.shape[0], 3) * 0.5
    rest = anny_body().joints[0, :22]
    ref = reference_fk(global_orient, body_pose, rest)
    got = anny_body(global_orient=global_orient, body_pose=body_pose).joints[:, :22]
    err = limb_angles_deg(got - got[:, :1], ref)
    med, mx = err.median().item(), err.max().item()
    print(
        f"retarget limb-direction error over {body_pose.shape[0]} held-out mocap poses: "
        f"median {med:.3f} deg, max {mx:.3f} deg"
    )
    assert med < 1.0 and mx < 3.0


def test_gradients_reach_every_parameter(anny_body):
    torch.manual_seed(1)
    params = {
        "global_orient": torch.randn(2, 3) * 0.3,
        "body_pose": torch.randn(2, 21, 3) * 0.2,
        "transl": torch.randn(2, 3),
        "shape": torch.randn(2, 6) * 0.5,
        "left_hand_pose": torch.randn(2, 15, 3) * 0.1,
        "right_hand_pose": torch.randn(2, 15, 3) * 0.1,
    }
    for p in params.values():
        p.requires_grad_(True)
    out = anny_body(**params)
    loss = (
        out.keypoints("mediapipe33").square().sum()
        + out.keypoints("left_hand21").square().sum()
        + out.keypoints("right_hand21").square().sum()
    )
    loss.backward()
    for name, p in params.items():
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_shape_changes_stature(anny_body):
    h = anny_body.shape_names.index("height")
    shape = torch.zeros(2, 6)
    shape[1, h] = 2.0
    v = anny_body(shape=shape).vertices
    stature = v[..., 1].amax(1) - v[..., 1].amin(1)
    assert 1.5 < stature[0] < 2.0 and stature[1] > stature[0] + 0.05


def test_keypoint_sets_on_anny(anny_body):
    out = anny_body()
    assert set(anny_body.points.supported_sets()) >= {
        "coco17",
        "coco23",
        "body25",
        "mediapipe33",
        "left_hand21",
        "right_hand21",
    }
    mp = out.keypoints("mediapipe33")[0]
    assert bool(out.keypoint_mask("mediapipe33").all())
    at = {n: mp[i] for i, n in enumerate(MEDIAPIPE33)}
    # Eye corners straddle the eye on the correct sides; mouth below the nose.
    assert at["left_eye_outer"][0] > at["left_eye"][0] > at["left_eye_inner"][0] > 0
    assert at["right_eye_outer"][0] < at["right_eye"][0] < at["right_eye_inner"][0] < 0
    assert at["mouth_left"][0] > 0 > at["mouth_right"][0]
    assert at["nose"][1] - 0.08 < at["mouth_left"][1] < at["nose"][1] - 0.02
    # Fingertips beyond the knuckles beyond the wrist (T-pose, left hand along +x).
    hand = out.keypoints("left_hand21")[0]
    assert hand[8, 0] > hand[5, 0] > hand[0, 0]  # index tip > index MCP > wrist
    with pytest.raises(KeyError, match="face68"):
        out.keypoints("face68")


def test_sparse_evaluation_matches_full_mesh(anny_body):
    torch.manual_seed(2)
    p = {
        "global_orient": torch.randn(3, 3) * 0.3,
        "body_pose": torch.randn(3, 21, 3) * 0.3,
        "transl": torch.randn(3, 3),
        "shape": torch.randn(3, 6),
    }
    full, sparse = anny_body(**p), anny_body(**p, full_mesh=False)
    assert sparse.vertices.shape[1] < full.vertices.shape[1] // 4
    torch.testing.assert_close(sparse.joints, full.joints)
    for name in ("mediapipe33", "body25", "coco23", "right_hand21"):
        torch.testing.assert_close(sparse.keypoints(name), full.keypoints(name), atol=1e-5, rtol=0)


def test_contract_attributes_on_anny(anny_body):
    assert isinstance(anny_body, body.BodyModel)
    assert anny_body.num_shape == len(anny_body.shape_names) == 6 and "gender" in anny_body.shape_names
    assert anny_body.has_hands and not anny_body.has_face and anny_body.num_expression == 0
    assert anny_body.shape_space == ANNY_PHENOTYPES
    out = anny_body()
    assert anny_body.faces.dtype == torch.long and anny_body.faces.shape[1] == 3
    assert int(anny_body.faces.max()) == out.vertices.shape[1] - 1
    assert len(anny_body.joint_names) == out.joints.shape[1] and anny_body.joint_names[:2] == ["pelvis", "left_hip"]
    assert anny_body.device == torch.device("cpu") and anny_body.dtype == torch.float32
    sets = anny_body.keypoint_sets()
    assert {"coco17", "body25", "mediapipe33"} <= set(sets) and "face68" not in sets
    assert sets == anny_body.points.supported_sets()


def test_flat_and_jointwise_poses_agree_and_jaw_moves_the_jaw(anny_body):
    torch.manual_seed(3)
    pose, hand = torch.randn(2, 21, 3) * 0.3, torch.randn(2, 15, 3) * 0.2
    a = anny_body(body_pose=pose, left_hand_pose=hand)
    b = anny_body(body_pose=pose.reshape(2, 63), left_hand_pose=hand.reshape(2, 45))
    torch.testing.assert_close(a.vertices, b.vertices, rtol=0, atol=0)
    moved = (anny_body(jaw_pose=torch.tensor([[0.3, 0.0, 0.0]])).vertices - anny_body().vertices).norm(dim=-1)
    assert 100 < int((moved > 1e-3).sum()) < 3000  # the jaw and chin, not the body


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"body_pose": torch.zeros(1, 20, 3)}, r"body_pose has shape \(1, 20, 3\); expected \(B, 21, 3\) or \(B, 63\)"),
        ({"shape": torch.zeros(1, 10)}, r"shape has shape \(1, 10\); expected \(B, 6\)"),
        ({"global_orient": torch.zeros(3)}, r"global_orient has shape \(3,\); expected \(B, 3\)"),
        (
            {"right_hand_pose": torch.zeros(1, 15)},
            r"right_hand_pose has shape \(1, 15\); expected \(B, 15, 3\) or \(B, 45\)",
        ),
        ({"jaw_pose": torch.zeros(1, 1, 3)}, r"jaw_pose has shape \(1, 1, 3\); expected \(B, 3\)"),
    ],
)
def test_wrong_shape_names_the_argument(anny_body, kwargs, message):
    with pytest.raises(ValueError, match=message):
        anny_body(**kwargs)


def test_batch_mismatch_names_both_arguments(anny_body):
    with pytest.raises(
        ValueError,
        match=r"transl has shape \(3, 3\), expected \(2, 3\) "
        r"to match global_orient of shape \(2, 3\)",
    ):
        anny_body(global_orient=torch.zeros(2, 3), transl=torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"shape has shape \(1, 6\).*body_pose of shape \(4, 63\)"):
        anny_body(body_pose=torch.zeros(4, 63), shape=torch.zeros(1, 6))


def test_unknown_unsupported_and_non_tensor_arguments_are_named(anny_body):
    with pytest.raises(TypeError, match="betas"):
        anny_body(betas=torch.zeros(1, 10))
    with pytest.raises(ValueError, match=r"AnnyBody does not take expression.*num_expression is 0"):
        anny_body(expression=torch.zeros(1, 10))
    # An empty (B, 0) expression matches num_expression == 0 and changes nothing.
    torch.testing.assert_close(anny_body(expression=torch.zeros(1, 0)).vertices, anny_body().vertices, rtol=0, atol=0)
    with pytest.raises(TypeError, match="body_pose must be a torch.Tensor, got list"):
        anny_body(body_pose=[[0.0] * 63])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model_path": "x"}, r"model_path='x': Anny .* reads no model files"),
        ({"gender": "female"}, r"gender='female': .*phenotype"),
        ({"num_betas": 10}, r"Anny takes no extra arguments; got \['num_betas'\]"),
    ],
)
def test_create_anny_refuses_smplx_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        body.create("anny", **kwargs)


def test_create_unknown_model_names_the_choices():
    with pytest.raises(ValueError, match=r"'smpl'.*\('anny', 'smplx'\)"):
        body.create("smpl")


def test_rest_model_of_a_shape_without_grad_is_reused_and_never_stale(anny_body):
    """A shape that needs no gradient reuses the rest model of an equal shape (the last
    REST_CACHE_SIZE kept): the same keypoints as computing it afresh, a changed shape (other values
    or rows) recomputed, old entries dropped, and a shape with grad still gets its gradient."""
    torch.manual_seed(0)
    pose = torch.randn(4, 21, 3) * 0.2
    shape = torch.randn(4, 6) * 0.5

    def points(s: torch.Tensor) -> torch.Tensor:
        return anny_body(body_pose=pose[: len(s)], shape=s, full_mesh=False).keypoints("body25")

    anny_body._rest_cache.clear()
    fresh = points(shape)
    assert torch.equal(points(shape.clone()), fresh)  # served from the cache
    other = shape.clone()
    other[2, 1] += 0.25
    anny_body._rest_cache.clear()
    expected = points(other)
    points(shape)
    assert torch.equal(points(other), expected) and not torch.equal(expected, fresh)
    anny_body._rest_cache.clear()
    alone = points(shape[:2])
    points(shape)
    assert torch.equal(points(shape[:2]), alone) and len(anny_body._rest_cache) == 2
    for i in range(REST_CACHE_SIZE + 3):
        points(shape + i)
    assert len(anny_body._rest_cache) == REST_CACHE_SIZE
    free = shape.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(points(free).square().sum(), free)
    assert torch.equal(points(free).detach(), fresh) and grad.abs().sum() > 0
