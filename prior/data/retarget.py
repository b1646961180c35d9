"""Retarget a source skeleton's motion to SMPL-X body poses, keeping its world bone directions.

For an SMPL-X joint j driven by source joint s(j), with source global rotations G_src
(relative to the source rest pose, in SMPL-X axes after the map's axis change):

    G_j = G_src[s(j)] @ A_j,        R_j = G_parent(j)^T @ G_j.

A_j is the rest alignment: the minimal rotation taking j's T-pose bone direction to the
source's rest bone direction, then a twist about the bone that lines the knee (x) and elbow
(y) hinges up with the source's hinge axis (hips and shoulders take their limb's twist).
Joints without a T-pose direction (ankles, feet, collars, head, wrists) reuse their
parent's alignment, i.e. the source's rest pose is neutral there. SMPL-X joints the source
lacks get no rotation of their own. Where a source joint the map skips (e.g. ASF upperneck)
lies inside an SMPL-X bone, the bone's joint gets a minimal swing so the bone still points
where the source's does. The rest skeleton `rest_joints` (source bone lengths, aligned as
above) makes SMPL-X forward kinematics reproduce the source's joint positions.
"""

from __future__ import annotations

import numpy as np
import torch

from body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from body.skeleton import BODY_JOINT_NAMES, BODY_PARENTS
from prior.data.fk import forward_kinematics, smplx_forward_kinematics
from prior.data.motion import Motion, SourceMotion
from prior.data.skeleton_maps import SkeletonMap

_UP, _DOWN, _LEFT, _RIGHT = (0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0)
# Bone direction (towards the first child) of each aligned joint in the SMPL-X T-pose.
TPOSE_DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "spine1": _UP, "spine2": _UP, "spine3": _UP, "neck": _UP,
    "left_hip": _DOWN, "right_hip": _DOWN, "left_knee": _DOWN, "right_knee": _DOWN,
    "left_shoulder": _LEFT, "left_elbow": _LEFT, "right_shoulder": _RIGHT, "right_elbow": _RIGHT,
}  # fmt: skip
# SMPL-X hinge lines in the T-pose, and which hinge sets each limb joint's twist.
HINGE_AXES: dict[str, tuple[float, float, float]] = {
    "left_knee": _LEFT, "right_knee": _LEFT, "left_elbow": _UP, "right_elbow": _UP,
}  # fmt: skip
TWIST_FROM: dict[str, str] = {
    f"{side}_{j}": f"{side}_{hinge}"
    for side in ("left", "right")
    for j, hinge in (("hip", "knee"), ("knee", "knee"), ("shoulder", "elbow"), ("elbow", "elbow"))
}
_CHILDREN: list[list[int]] = [[c for c, p in enumerate(BODY_PARENTS) if p == j] for j in range(len(BODY_PARENTS))]
_FIRST_CHILD: dict[int, int] = {j: c[0] for j, c in enumerate(_CHILDREN) if c}
_FIRST_CHILD[BODY_JOINT_NAMES.index("spine3")] = BODY_JOINT_NAMES.index("neck")
_EPS = 1e-9


def minimal_rotation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) smallest rotations taking directions a to b (..., 3); any axis at 180 deg."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cross = torch.cross(a, b, dim=-1)
    sin, cos = cross.norm(dim=-1, keepdim=True), (a * b).sum(-1, keepdim=True)
    spare = torch.where(a[..., :1].abs() < 0.9, a.new_tensor([1.0, 0, 0]), a.new_tensor([0, 1.0, 0]))
    perp = torch.cross(a, spare.expand_as(a), dim=-1)
    axis = torch.where(sin > 1e-12, cross / sin.clamp_min(1e-12), perp / perp.norm(dim=-1, keepdim=True))
    return axis_angle_to_matrix(axis * torch.atan2(sin, cos))


def _twist_to_hinge(
    align: torch.Tensor, bone: torch.Tensor, hinge_src: torch.Tensor, hinge: torch.Tensor
) -> torch.Tensor:
    """`align` followed by the twist about `bone` (unit) mapping the hinge line onto hinge_src."""
    h = align.T @ hinge_src
    h = h - (h @ bone) * bone
    if h.norm() < 1e-6:
        return align
    h = h / h.norm()
    angle = torch.atan2(bone @ torch.cross(hinge, h, dim=0), hinge @ h)
    if angle > torch.pi / 2:  # a hinge is a line: take the smaller twist
        angle = angle - torch.pi
    elif angle <= -torch.pi / 2:
        angle = angle + torch.pi
    return align @ axis_angle_to_matrix(bone * angle)


def retarget(src: SourceMotion, smap: SkeletonMap, *, source: str = "", subject: str = "", path: str = "") -> Motion:
    """SMPL-X Motion of a source motion under `smap` (see the module docstring)."""
    dt = torch.float64
    axes = torch.tensor(smap.axes_matrix, dtype=dt)
    offsets = torch.tensor(src.offsets, dtype=dt) @ axes.T
    local = axes @ torch.tensor(src.local_rot, dtype=dt) @ axes.T
    frame_offsets = offsets.expand(src.num_frames, -1, -1).clone()
    frame_offsets[:, 0] = torch.tensor(src.root_pos, dtype=dt) @ axes.T
    pos, glob = forward_kinematics(local, frame_offsets, src.parents)
    rest_pos, _ = forward_kinematics(torch.eye(3, dtype=dt).expand(len(src.names), 3, 3), offsets, src.parents)

    driver = [src.index(smap.rotations[n]) if n in smap.rotations else None for n in BODY_JOINT_NAMES]
    anchor = [src.index(smap.source_of(n)) for n in BODY_JOINT_NAMES]
    hinge_src = {
        name: axes @ torch.tensor(np.asarray(axis, dtype=np.float64))
        for name, axis in {**smap.hinges, **src.hinge_axes}.items()
    }

    align: list[torch.Tensor] = []
    for j, name in enumerate(BODY_JOINT_NAMES):
        inherited = torch.eye(3, dtype=dt) if BODY_PARENTS[j] < 0 else align[BODY_PARENTS[j]]
        bone = rest_pos[anchor[_FIRST_CHILD[j]]] - rest_pos[anchor[j]] if j in _FIRST_CHILD else None
        if name not in TPOSE_DIRECTIONS or driver[j] is None or bone is None or bone.norm() < _EPS:
            align.append(inherited)
            continue
        tpose = torch.tensor(TPOSE_DIRECTIONS[name], dtype=dt)
        a = minimal_rotation(tpose, bone)
        hinge_joint = smap.rotations.get(TWIST_FROM.get(name, ""))
        if hinge_joint in hinge_src:
            hinge = torch.tensor(HINGE_AXES[TWIST_FROM[name]], dtype=dt)
            a = _twist_to_hinge(a, tpose, hinge_src[hinge_joint], hinge)
        align.append(a)

    rest = [rest_pos[anchor[0]]]
    for j in range(1, len(BODY_JOINT_NAMES)):
        p = BODY_PARENTS[j]
        rest.append(rest[p] + align[p].T @ (rest_pos[anchor[j]] - rest_pos[anchor[p]]))
    rest_joints = torch.stack(rest)

    joints = pos[:, anchor]
    globals_: list[torch.Tensor] = []
    for j in range(len(BODY_JOINT_NAMES)):
        g = glob[:, driver[j]] @ align[j] if driver[j] is not None else globals_[BODY_PARENTS[j]]
        if len(_CHILDREN[j]) == 1:
            c = _CHILDREN[j][0]
            rest_bone = rest_joints[c] - rest_joints[j]
            if rest_bone.norm() > _EPS:
                g = minimal_rotation(g @ rest_bone, joints[:, c] - joints[:, j]) @ g
        globals_.append(g)
    g_all = torch.stack(globals_, dim=1)
    parents = g_all[:, [max(p, 0) for p in BODY_PARENTS[1:]]]
    local_rot = parents.transpose(-1, -2) @ g_all[:, 1:]
    return Motion(
        body_pose=matrix_to_axis_angle(local_rot).numpy().astype(np.float32),
        root_orient=matrix_to_axis_angle(g_all[:, 0]).numpy().astype(np.float32),
        transl=joints[:, 0].numpy().astype(np.float32),
        fps=src.fps,
        source=source,
        subject=subject,
        path=path,
        joints=joints.numpy().astype(np.float32),
        rest_joints=rest_joints.numpy().astype(np.float32),
    )


def bone_direction_errors(motion: Motion) -> tuple[np.ndarray, list[str]]:
    """Angles (degrees, (T, B)) between SMPL-X FK bones and the source's, and the bone names.

    FK runs on `motion.rest_joints`; bones are (parent, child) pairs of the 22-joint tree
    whose rest length is non-zero. Needs a retargeted motion (joints and rest_joints set).
    """
    if motion.joints is None or motion.rest_joints is None:
        raise ValueError("bone_direction_errors needs a retargeted motion (joints, rest_joints)")
    rest = torch.tensor(motion.rest_joints, dtype=torch.float64)
    fk = smplx_forward_kinematics(
        torch.tensor(motion.body_pose, dtype=torch.float64), rest, torch.tensor(motion.root_orient, dtype=torch.float64)
    )
    src = torch.tensor(motion.joints, dtype=torch.float64)
    bones = [(p, c) for c, p in enumerate(BODY_PARENTS) if p >= 0 and (rest[c] - rest[p]).norm() > 1e-6]
    idx_p, idx_c = [p for p, _ in bones], [c for _, c in bones]
    a, b = fk[:, idx_c] - fk[:, idx_p], src[:, idx_c] - src[:, idx_p]
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)
    names = [f"{BODY_JOINT_NAMES[p]}->{BODY_JOINT_NAMES[c]}" for p, c in bones]
    return np.degrees(torch.arccos(cos.clamp(-1, 1)).numpy()), names
