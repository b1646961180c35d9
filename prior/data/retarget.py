"""Retarget a source skeleton's motion to SMPL-X body poses, keeping its world bone directions.

The source is first brought to SMPL-X axes (y up, subject's left +x, facing +z; given by the
map or detected, `detect_axes`). Rigs whose zero pose is not anatomically neutral are then
re-rested (`rerest`, which changes no joint position): joints with a map `neutral` rotation
take it as their zero, and maps with rest="frames" (zero pose not a T-pose), or files of a
"tpose" map whose zero pose bends a knee or elbow (`rest_is_bent`), get every joint's rest
frame from world-space joint frames of the zero pose (`rest_frames`). Maps with
measure_flexion use each motion's own knee and elbow flexion axes (`flexion_axis`).

For an SMPL-X joint j driven by source joint s(j), with source global rotations G_src
(relative to the source rest pose, in SMPL-X axes):

    G_j = G_src[s(j)] @ A_j,        R_j = G_parent(j)^T @ G_j.

A_j is the rest alignment: the minimal rotation taking j's T-pose bone direction to the
source's rest bone direction, then a twist about the bone that lines the knee (x) and elbow
(y) hinges up with the source's hinge axis (hips and shoulders take their limb's twist; a
signed flexion axis fixes the sign, a hinge line takes the smaller twist). Joints without a
T-pose direction (ankles, feet, collars, head, wrists) reuse their parent's alignment, i.e.
the source's rest pose is neutral there. SMPL-X joints the source lacks get no rotation of
their own. Where a source joint the map skips (e.g. ASF upperneck) lies inside an SMPL-X
bone, the bone's joint gets a minimal swing so the bone still points where the source's
does. With the map's hinge_twist="child", twist about a knee or elbow bone moves to the
ankle or wrist. The rest skeleton `rest_joints` (source bone lengths, aligned as above)
makes SMPL-X forward kinematics reproduce the source's joint positions.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from body.skeleton import BODY_JOINT_NAMES, BODY_PARENTS, HINGE_FLEXION_AXES
from prior.data.fk import forward_kinematics, smplx_forward_kinematics
from prior.data.motion import Motion, MotionFormatError, SourceMotion
from prior.data.skeleton_maps import SkeletonMap

_UP, _DOWN, _LEFT, _RIGHT = (0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0)
# Bone direction (towards the first child) of each aligned joint in the SMPL-X T-pose.
TPOSE_DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "spine1": _UP, "spine2": _UP, "spine3": _UP, "neck": _UP,
    "left_hip": _DOWN, "right_hip": _DOWN, "left_knee": _DOWN, "right_knee": _DOWN,
    "left_shoulder": _LEFT, "left_elbow": _LEFT, "right_shoulder": _RIGHT, "right_elbow": _RIGHT,
}  # fmt: skip
# The other joints' bones in the T-pose, for rest frames built from world-space joint frames:
# the ankle-to-toe-base bone points forward and 21 deg down (Anny's and SMPL-X's rest feet).
_FOOT = (0.0, -0.358, 0.934)
FRAME_DIRECTIONS: dict[str, tuple[float, float, float]] = {
    **TPOSE_DIRECTIONS, "head": _UP, "left_collar": _LEFT, "right_collar": _RIGHT,
    "left_wrist": _LEFT, "right_wrist": _RIGHT, "left_ankle": _FOOT, "right_ankle": _FOOT,
    "left_foot": (0.0, 0.0, 1.0), "right_foot": (0.0, 0.0, 1.0),
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
# Rest frames from world-space joint frames also twist the collars with the elbow hinge (the
# rig's zero pose carries one twist along the shoulder girdle and arm).
FRAME_TWIST_FROM: dict[str, str] = {**TWIST_FROM, "left_collar": "left_elbow", "right_collar": "right_elbow"}
_CHILDREN: list[list[int]] = [[c for c, p in enumerate(BODY_PARENTS) if p == j] for j in range(len(BODY_PARENTS))]
_FIRST_CHILD: dict[int, int] = {j: c[0] for j, c in enumerate(_CHILDREN) if c}
_FIRST_CHILD[BODY_JOINT_NAMES.index("spine3")] = BODY_JOINT_NAMES.index("neck")
_HINGE_CHILD = {"left_knee": "left_ankle", "right_knee": "right_ankle", "left_elbow": "left_wrist",
                "right_elbow": "right_wrist"}  # fmt: skip
_EPS = 1e-9
# A motion measures its own flexion axes (measure_flexion) from the frames bending the joint by
# 20 deg, or else 10 deg, when it has at least 30 such frames.
MEASURE_MIN_FRAMES = 30
MEASURE_MIN_DEG = (20.0, 10.0)
REST_BENT_DEG = 30.0  # a "tpose" map's file whose rest bends a knee or elbow more is re-rested by frames


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
    align: torch.Tensor, bone: torch.Tensor, hinge_src: torch.Tensor, hinge: torch.Tensor, signed: bool = False
) -> torch.Tensor:
    """`align` followed by the twist about `bone` (unit) mapping the hinge onto hinge_src: as
    lines (the smaller twist) unless `signed`."""
    h = align.T @ hinge_src
    h = h - (h @ bone) * bone
    if h.norm() < 1e-6:
        return align
    h = h / h.norm()
    angle = torch.atan2(bone @ torch.cross(hinge, h, dim=0), hinge @ h)
    if not signed:
        if angle > torch.pi / 2:  # a hinge is a line: take the smaller twist
            angle = angle - torch.pi
        elif angle <= -torch.pi / 2:
            angle = angle + torch.pi
    return align @ axis_angle_to_matrix(bone * angle)


def flexion_axis(
    local_rot: np.ndarray,
    bone: np.ndarray,
    upper: np.ndarray | None = None,
    min_deg: float = 20.0,
    min_frames: int = 1,
) -> np.ndarray:
    """Signed flexion axis of a hinge-like joint, perpendicular to its bone (3,), from its local
    rotations (T, 3, 3); NaNs when fewer than `min_frames` frames swing the bone by `min_deg`.

    The line is the principal axis of the swing rotations (twist about the bone ignored) of
    those frames. Its sign: the one along which the rotation grows as the limb bends, i.e. as
    the angle between `upper` (the parent bone, e.g. thigh, in the same axes) and the rotated
    bone grows, which holds for a rest pose bent at that joint too; without `upper`, the
    side most rotations lie on.
    """
    rot = torch.as_tensor(np.asarray(local_rot), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(bone), dtype=torch.float64)
    b = b / b.norm()
    moved = rot @ b
    cross = torch.cross(b.expand_as(moved), moved, dim=-1)
    angle = torch.atan2(cross.norm(dim=-1), moved @ b)
    keep = angle > np.radians(min_deg)
    if int(keep.sum()) < max(1, min_frames):
        return np.full(3, np.nan)
    units = cross[keep] / cross[keep].norm(dim=-1, keepdim=True)
    line = torch.linalg.eigh(units.T @ units)[1][:, -1]
    line = line - (line @ b) * b
    line = line / line.norm()
    signed_angle = (cross / cross.norm(dim=-1, keepdim=True).clamp_min(1e-12)) @ line * angle
    sign = torch.sign(signed_angle[keep].sum())
    if upper is not None:
        u = torch.as_tensor(np.asarray(upper), dtype=torch.float64)
        bend = torch.arccos(((moved @ u) / u.norm()).clamp(-1.0, 1.0))
        if bend.std() > 1e-6 and signed_angle.std() > 1e-6:
            corr = torch.corrcoef(torch.stack([signed_angle, bend]))[0, 1]
            if corr.abs() > 0.3:
                sign = torch.sign(corr)
    return (line * (sign if sign != 0 else 1.0)).numpy()


def rest_is_bent(src: SourceMotion, smap: SkeletonMap, max_deg: float = REST_BENT_DEG) -> bool:
    """Whether the source's zero pose bends a knee or an elbow by more than `max_deg` (a rest
    pose taken from a posed frame, not a T-pose or arms-down pose)."""
    rest = _rest_positions(src)
    for side in ("left", "right"):
        for a, b, c in (("hip", "knee", "ankle"), ("shoulder", "elbow", "wrist")):
            p = [rest[src.index(smap.source_of(f"{side}_{n}"))] for n in (a, b, c)]
            u, v = p[1] - p[0], p[2] - p[1]
            if u.norm() > _EPS and v.norm() > _EPS:
                if torch.rad2deg(torch.arccos((u @ v / (u.norm() * v.norm())).clamp(-1, 1))) > max_deg:
                    return True
    return False


def _rest_positions(src: SourceMotion) -> torch.Tensor:
    offsets = torch.as_tensor(src.offsets, dtype=torch.float64)
    return forward_kinematics(torch.eye(3, dtype=torch.float64).expand(len(src.names), 3, 3), offsets, src.parents)[0]


def _nearest_axis(v: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    v = np.array(v, dtype=np.float64)
    if exclude is not None:
        v[np.abs(exclude) > 0.5] = 0.0
    k = int(np.argmax(np.abs(v)))
    out = np.zeros(3)
    out[k] = 1.0 if v[k] >= 0 else -1.0
    return out


def detect_axes(src: SourceMotion, smap: SkeletonMap, rest: str | None = None) -> np.ndarray:
    """Rows of the rotation from the source's axes to SMPL-X's (y up, left +x, facing +z).

    Up is the signed world axis nearest to the pelvis-to-neck direction: of the rest pose for
    a T-pose rest (which also gives left, from the right hip to the left hip), of the motion
    (median over frames) for rest="frames" (default: the map's), where the heading is left as
    it is.
    """
    top = smap.source_of("neck") if smap.source_of("neck") != smap.source_of("head") else smap.source_of("spine3")
    pelvis, top_i = src.index(smap.source_of("pelvis")), src.index(top)
    if (rest or smap.rest) == "tpose":
        rest_pos = _rest_positions(src).numpy()
        up = _nearest_axis(rest_pos[top_i] - rest_pos[pelvis])
        lateral = rest_pos[src.index(smap.source_of("left_hip"))] - rest_pos[src.index(smap.source_of("right_hip"))]
        left = _nearest_axis(lateral, exclude=up)
    else:
        step = max(1, src.num_frames // 200)
        local = torch.as_tensor(src.local_rot[::step], dtype=torch.float64)
        offsets = torch.as_tensor(src.offsets, dtype=torch.float64).expand(local.shape[0], -1, -1).clone()
        pos = forward_kinematics(local, offsets, src.parents)[0].numpy()
        spine = pos[:, top_i] - pos[:, pelvis]
        up = _nearest_axis(np.median(spine / np.linalg.norm(spine, axis=-1, keepdims=True), axis=0))
        left = np.eye(3)[next(k for k in range(3) if up[k] == 0)]
    return np.stack([left, up, np.cross(left, up)])


def rerest(src: SourceMotion, change: np.ndarray) -> SourceMotion:
    """The same motion with each joint's rest frame turned by change[j] (J, 3, 3): global
    rotations become G_j @ change[j]^T, local ones Q_p @ L_j @ Q_j^T, offsets Q_p @ o_j. Joint
    positions do not change; hinge axes turn with their joint."""
    q = np.asarray(change, dtype=np.float64)
    parent_q = np.stack([q[p] if p >= 0 else np.eye(3) for p in src.parents])
    offsets = np.einsum("jab,jb->ja", parent_q, src.offsets)
    offsets[0] = src.offsets[0]
    local = parent_q @ src.local_rot @ np.swapaxes(q, -1, -2)
    hinges = {n: q[src.index(n)] @ np.asarray(a) for n, a in src.hinge_axes.items()}
    return replace(src, offsets=offsets, local_rot=local, hinge_axes=hinges)


def _turn(bone: torch.Tensor, current: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Rotation about `bone` (unit) taking `current` (perpendicular to it) to `target`'s
    perpendicular part; identity when that part vanishes."""
    t = target - (target @ bone) * bone
    if t.norm() < 1e-6:
        return torch.eye(3, dtype=bone.dtype)
    angle = torch.atan2(bone @ torch.cross(current, t, dim=0), current @ t)
    return axis_angle_to_matrix(bone * angle)


def rest_frames(
    src: SourceMotion,
    smap: SkeletonMap,
    flexion: dict[str, torch.Tensor],
    rig_flexion: dict[str, torch.Tensor] | None = None,
) -> np.ndarray:
    """Anatomical rest frame F_s (J, 3, 3) of each source joint in its zero pose, from world-space
    joint frames: columns are the joint's left, up and forward axes (SMPL-X T-pose axes).

    The pelvis's frame comes from the pelvis-to-neck direction (up) and the right-to-left hip
    direction (left). Every other driving joint turns its SMPL-X parent's frame by the minimal
    rotation taking its T-pose bone direction (FRAME_DIRECTIONS; leaves use the source joint's
    first child) to its zero-pose bone, then twists about the bone so that the signed flexion
    axis of its limb's knee or elbow (`flexion`, source joints -> axes in SMPL-X axes) is where
    SMPL-X has it (hips, knees from the knee; shoulders, elbows from the elbow; collars from
    the rig's elbow axis `rig_flexion`, the map's constant, as a motion's own elbow axis says
    nothing about the collar). No T-pose is assumed. Joints the map does not drive keep their
    parent's frame.
    """
    rig_flexion = flexion if rig_flexion is None else rig_flexion
    dt = torch.float64
    rest = _rest_positions(src)
    children = [[c for c, p in enumerate(src.parents) if p == j] for j in range(len(src.names))]
    driver = {n: src.index(smap.rotations[n]) for n in BODY_JOINT_NAMES if n in smap.rotations}
    anchor = [src.index(smap.source_of(n)) for n in BODY_JOINT_NAMES]
    frames: dict[int, torch.Tensor] = {}
    smpl_frames: list[torch.Tensor] = []
    for j, name in enumerate(BODY_JOINT_NAMES):
        if j == 0:
            top = anchor[BODY_JOINT_NAMES.index("neck")]
            up = rest[top] - rest[anchor[0]]
            lateral = rest[anchor[1]] - rest[anchor[2]]
            up = up / up.norm()
            left = lateral - (lateral @ up) * up
            left = left / left.norm()
            f = torch.stack([left, up, torch.cross(left, up, dim=0)], dim=1)
        else:
            f = smpl_frames[BODY_PARENTS[j]]
            s = driver.get(name)
            if s is not None:
                if j in _FIRST_CHILD:
                    bone = rest[anchor[_FIRST_CHILD[j]]] - rest[anchor[j]]
                else:
                    bone = rest[children[s][0]] - rest[s] if children[s] else torch.zeros(3, dtype=dt)
                if bone.norm() > _EPS:
                    bone = bone / bone.norm()
                    f = minimal_rotation(f @ torch.tensor(FRAME_DIRECTIONS[name], dtype=dt), bone) @ f
                    hinge = smap.rotations.get(FRAME_TWIST_FROM.get(name, ""))
                    axes_of = rig_flexion if name.endswith("collar") else flexion
                    if hinge in axes_of:
                        smpl_axis = torch.tensor(HINGE_FLEXION_AXES[FRAME_TWIST_FROM[name]], dtype=dt)
                        f = _turn(bone, f @ smpl_axis, axes_of[hinge]) @ f
        smpl_frames.append(f)
        if name in driver:
            frames.setdefault(driver[name], f)
    out = np.zeros((len(src.names), 3, 3))
    for j, p in enumerate(src.parents):
        out[j] = frames[j].numpy() if j in frames else (out[p] if p >= 0 else np.eye(3))
    return out


def _in_axes(src: SourceMotion, axes: np.ndarray) -> SourceMotion:
    return replace(
        src,
        offsets=src.offsets @ axes.T,
        local_rot=axes @ src.local_rot @ axes.T,
        root_pos=src.root_pos @ axes.T,
        hinge_axes={n: axes @ np.asarray(a) for n, a in src.hinge_axes.items()},
    )


def _measured_flexion(
    src: SourceMotion, smap: SkeletonMap, axes: np.ndarray, mode: str, path: str
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The hinges' flexion axes in the source's (re-axed) frames: measured from the motion where
    `smap.measure_flexion` asks (falling back to the map's), and the map's own (the rig's)."""
    dt = torch.float64
    flexion = {n: torch.tensor(axes @ np.asarray(a, dtype=np.float64), dtype=dt) for n, a in smap.flexion.items()}
    rig_flexion = dict(flexion)
    if not smap.measure_flexion:
        return flexion, rig_flexion
    for n in flexion:
        s = src.index(n)
        child = next((c for c, p in enumerate(src.parents) if p == s), None)
        axis = np.full(3, np.nan)
        for min_deg in MEASURE_MIN_DEG if child is not None else ():
            axis = flexion_axis(
                src.local_rot[:, s], src.offsets[child], src.offsets[s], min_deg, min_frames=MEASURE_MIN_FRAMES
            )
            if np.isfinite(axis).all():
                flexion[n] = torch.tensor(axis, dtype=dt)
                break
        if not np.isfinite(axis).all() and mode != smap.rest:
            raise MotionFormatError(
                path, f"its rest pose is bent (not a T-pose) and {n} bends too little to measure its hinge axis"
            )
    return flexion, rig_flexion


def _to_tpose_rest(
    src: SourceMotion,
    smap: SkeletonMap,
    axes: np.ndarray,
    mode: str,
    flexion: dict[str, torch.Tensor],
    rig_flexion: dict[str, torch.Tensor],
) -> tuple[SourceMotion, dict[str, torch.Tensor]]:
    """The source re-rested on the map's neutral pose and, in "frames" mode, on a T-pose built
    from its frames (`rest_frames`); the flexion axes follow."""
    dt = torch.float64
    if smap.neutral:
        change = np.broadcast_to(np.eye(3), (len(src.names), 3, 3)).copy()
        for n, rotvec in smap.neutral.items():
            neutral = axis_angle_to_matrix(torch.tensor(np.radians(rotvec), dtype=dt)).numpy()
            change[src.index(n)] = axes @ neutral @ axes.T
        src = rerest(src, change)
    if mode == "frames":
        frames = rest_frames(src, smap, flexion, rig_flexion)
        change = np.swapaxes(frames, -1, -2)
        flexion = {n: torch.tensor(change[src.index(n)], dtype=dt) @ a for n, a in flexion.items()}
        src = rerest(src, change)
    return src, flexion


def _alignments(
    src: SourceMotion,
    smap: SkeletonMap,
    axes: np.ndarray,
    flexion: dict[str, torch.Tensor],
    rest_pos: torch.Tensor,
    driver: list[int | None],
    anchor: list[int],
) -> list[torch.Tensor]:
    """Per SMPL-X joint, the rotation from its T-pose frame to its driving source joint's rest
    frame: the bone turned onto the T-pose direction, twisted so the hinges agree."""
    dt = torch.float64
    hinge_src = {
        name: torch.tensor(np.asarray(axis, dtype=np.float64), dtype=dt)
        for name, axis in {**{n: axes @ np.asarray(a) for n, a in smap.hinges.items()}, **src.hinge_axes}.items()
    }
    hinge_src.update(flexion)
    align: list[torch.Tensor] = []
    for j, name in enumerate(BODY_JOINT_NAMES):
        inherited = torch.eye(3, dtype=dt) if BODY_PARENTS[j] < 0 else align[BODY_PARENTS[j]]
        bone = rest_pos[anchor[_FIRST_CHILD[j]]] - rest_pos[anchor[j]] if j in _FIRST_CHILD else None
        if name not in TPOSE_DIRECTIONS or driver[j] is None or bone is None or bone.norm() < _EPS:
            align.append(inherited)
            continue
        tpose = torch.tensor(TPOSE_DIRECTIONS[name], dtype=dt)
        a = minimal_rotation(tpose, bone)
        hinge_name = TWIST_FROM.get(name, "")
        hinge_joint = smap.rotations.get(hinge_name)
        if hinge_joint in hinge_src:
            signed = hinge_joint in flexion
            hinge = torch.tensor((HINGE_FLEXION_AXES if signed else HINGE_AXES)[hinge_name], dtype=dt)
            a = _twist_to_hinge(a, tpose, hinge_src[hinge_joint], hinge, signed=signed)
        align.append(a)
    return align


def _global_rotations(
    glob: torch.Tensor,
    driver: list[int | None],
    align: list[torch.Tensor],
    rest_joints: torch.Tensor,
    joints: torch.Tensor,
    hinge_twist: str,
) -> torch.Tensor:
    """(T, 22, 3, 3) SMPL-X global rotations: each driving source joint's, aligned, then turned so
    that a single child's bone points at the source's child joint (`hinge_twist` "child": the
    hinges' twist too)."""
    globals_: list[torch.Tensor] = []
    for j in range(len(BODY_JOINT_NAMES)):
        g = glob[:, driver[j]] @ align[j] if driver[j] is not None else globals_[BODY_PARENTS[j]]
        if len(_CHILDREN[j]) == 1:
            c = _CHILDREN[j][0]
            rest_bone = rest_joints[c] - rest_joints[j]
            if rest_bone.norm() > _EPS:
                g = minimal_rotation(g @ rest_bone, joints[:, c] - joints[:, j]) @ g
        globals_.append(g)
    if hinge_twist == "child":
        for name, child in _HINGE_CHILD.items():
            j, c = BODY_JOINT_NAMES.index(name), BODY_JOINT_NAMES.index(child)
            bone = rest_joints[c] - rest_joints[j]
            if bone.norm() > _EPS:
                parent = globals_[BODY_PARENTS[j]]
                rel = parent.transpose(-1, -2) @ globals_[j]
                globals_[j] = parent @ minimal_rotation(bone.expand(rel.shape[0], 3), rel @ bone)
    return torch.stack(globals_, dim=1)


def retarget(src: SourceMotion, smap: SkeletonMap, *, source: str = "", subject: str = "", path: str = "") -> Motion:
    """SMPL-X Motion of a source motion under `smap` (see the module docstring)."""
    dt = torch.float64
    mode = "frames" if smap.rest == "frames" or rest_is_bent(src, smap) else "tpose"
    axes = smap.axes_matrix if smap.axes is not None else detect_axes(src, smap, mode)
    src = _in_axes(src, axes)
    flexion, rig_flexion = _measured_flexion(src, smap, axes, mode, path)
    src, flexion = _to_tpose_rest(src, smap, axes, mode, flexion, rig_flexion)

    frame_offsets = torch.tensor(src.offsets, dtype=dt).expand(src.num_frames, -1, -1).clone()
    frame_offsets[:, 0] = torch.tensor(src.root_pos, dtype=dt)
    pos, glob = forward_kinematics(torch.tensor(src.local_rot, dtype=dt), frame_offsets, src.parents)
    rest_pos = _rest_positions(src)
    driver = [src.index(smap.rotations[n]) if n in smap.rotations else None for n in BODY_JOINT_NAMES]
    anchor = [src.index(smap.source_of(n)) for n in BODY_JOINT_NAMES]
    align = _alignments(src, smap, axes, flexion, rest_pos, driver, anchor)

    rest = [rest_pos[anchor[0]]]
    for j in range(1, len(BODY_JOINT_NAMES)):
        p = BODY_PARENTS[j]
        rest.append(rest[p] + align[p].T @ (rest_pos[anchor[j]] - rest_pos[anchor[p]]))
    rest_joints = torch.stack(rest)
    joints = pos[:, anchor]
    g_all = _global_rotations(glob, driver, align, rest_joints, joints, smap.hinge_twist)
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
        skeleton=smap.name,
        first_frame=src.first_frame,
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
