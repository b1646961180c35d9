"""Left-right mirroring (reflection through the x = 0 plane) of SMPL-X body motions."""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

import numpy as np
import torch

from body.rotations import mirror_axis_angle
from body.skeleton import BODY_MIRROR
from prior.data.motion import Motion

# body_pose index (0..20) of each joint's left/right twin (itself for the spine).
POSE_MIRROR = tuple(BODY_MIRROR[j] - 1 for j in range(1, len(BODY_MIRROR)))
_REFLECT_X = np.array([-1.0, 1.0, 1.0], dtype=np.float32)
Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _mirror_aa(aa: Array) -> Array:
    if isinstance(aa, np.ndarray):
        return mirror_axis_angle(torch.from_numpy(np.ascontiguousarray(aa))).numpy()
    return mirror_axis_angle(aa)


def mirror_body_pose(body_pose: Array) -> Array:
    """(..., 21, 3) axis-angle body poses of the mirror-image person (left and right swapped)."""
    return _mirror_aa(body_pose[..., list(POSE_MIRROR), :])


def mirror_motion(motion: Motion) -> Motion:
    """The mirror image of a motion: poses, root orientation, translation and joints."""
    return replace(
        motion,
        body_pose=mirror_body_pose(motion.body_pose),
        root_orient=_mirror_aa(motion.root_orient),
        transl=motion.transl * _REFLECT_X,
        joints=None if motion.joints is None else motion.joints[..., list(BODY_MIRROR), :] * _REFLECT_X,
        rest_joints=None if motion.rest_joints is None else motion.rest_joints[list(BODY_MIRROR)] * _REFLECT_X,
    )
