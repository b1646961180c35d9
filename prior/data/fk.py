"""Forward kinematics of a joint tree whose rest frames are aligned with the world axes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from body.rotations import axis_angle_to_matrix
from body.skeleton import BODY_PARENTS


def forward_kinematics(
    local_rot: torch.Tensor, offsets: torch.Tensor, parents: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Global joint positions and rotations of a posed tree.

    local_rot: (..., J, 3, 3) rotation of each joint relative to its parent, in world-aligned
        rest axes. offsets: (..., J, 3) or (J, 3) rest offset of each joint from its parent;
        the root's entry is the root position. parents: J indices, parents before children,
        -1 for the root. Returns positions (..., J, 3) and global rotations (..., J, 3, 3):
        G_j = G_parent @ local_rot_j, p_j = p_parent + G_parent @ offsets_j.
    """
    offsets = offsets.to(local_rot.dtype).expand(*local_rot.shape[:-2], 3)
    glob: list[torch.Tensor] = []
    pos: list[torch.Tensor] = []
    for j, p in enumerate(parents):
        if p < 0:
            glob.append(local_rot[..., j, :, :])
            pos.append(offsets[..., j, :])
        else:
            glob.append(glob[p] @ local_rot[..., j, :, :])
            pos.append(pos[p] + (glob[p] @ offsets[..., j, :, None])[..., 0])
    return torch.stack(pos, dim=-2), torch.stack(glob, dim=-3)


def rest_offsets(rest_joints: torch.Tensor) -> torch.Tensor:
    """(..., 22, 3) T-pose SMPL-X body joint positions -> offsets from each joint's parent
    (the pelvis keeps its position), as `forward_kinematics` takes them."""
    parent_pos = rest_joints[..., [max(p, 0) for p in BODY_PARENTS], :]
    return torch.cat([rest_joints[..., :1, :], rest_joints[..., 1:, :] - parent_pos[..., 1:, :]], dim=-2)


def rest_joints(body_model: torch.nn.Module) -> torch.Tensor:
    """A body model's default-shape T-pose body joints (22, 3), pelvis first: a `RestSkeleton`'s rest."""
    with torch.no_grad():
        return body_model().joints[0, :22].detach().cpu().clone()


class RestSkeleton:
    """Joint positions of body rotations on one rest skeleton: the SMPL-X body tree (pelvis + 21)
    with the bone offsets of `rest` (22, 3) T-pose joints (`rest_joints`)."""

    def __init__(self, rest: torch.Tensor | np.ndarray, pelvis_at_origin: bool = False) -> None:
        """`pelvis_at_origin`: the pelvis at (0, 0, 0) instead of at rest[0]."""
        rest = torch.as_tensor(rest)
        offsets = rest_offsets(rest if rest.is_floating_point() else rest.float())
        if pelvis_at_origin:
            offsets[..., 0, :] = 0.0
        self.offsets = offsets

    def __call__(self, rotations: torch.Tensor) -> torch.Tensor:
        """(..., 22, 3, 3) rotations, or (..., 21, 3, 3) body rotations under an unrotated pelvis,
        -> (..., 22, 3) joint positions. Differentiable."""
        if rotations.shape[-3] == len(BODY_PARENTS) - 1:
            root = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
            rotations = torch.cat([root.expand(*rotations.shape[:-3], 1, 3, 3), rotations], dim=-3)
        return forward_kinematics(rotations, self.offsets.to(rotations), BODY_PARENTS)[0]


def smplx_forward_kinematics(
    body_pose: torch.Tensor | np.ndarray,
    rest_joints: torch.Tensor | np.ndarray,
    root_orient: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    """Positions (..., 22, 3) of the SMPL-X body joints (pelvis + 21) for axis-angle poses.

    body_pose: (..., 21, 3) or (..., 63). rest_joints: (22, 3) or (..., 22, 3) T-pose joint
    positions. root_orient: (..., 3) pelvis rotation (identity when None). The pelvis stays
    at rest_joints[0]; add a translation yourself. Differentiable; numpy inputs are accepted.
    """
    body_pose = torch.as_tensor(body_pose)
    if not body_pose.is_floating_point():
        body_pose = body_pose.float()
    body_pose = body_pose.reshape(*body_pose.shape[:-1], 21, 3) if body_pose.shape[-1] == 63 else body_pose
    rest = torch.as_tensor(rest_joints, dtype=body_pose.dtype, device=body_pose.device)
    root = (
        torch.zeros(*body_pose.shape[:-2], 3, dtype=body_pose.dtype, device=body_pose.device)
        if root_orient is None
        else torch.as_tensor(root_orient, dtype=body_pose.dtype, device=body_pose.device)
    )
    return RestSkeleton(rest)(axis_angle_to_matrix(torch.cat([root[..., None, :], body_pose], dim=-2)))
