"""Data containers shared by the motion readers, the retargeter and the dataset builder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class MotionFormatError(ValueError):
    """A motion file is corrupt, truncated or not understood; names the file and line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass
class SourceMotion:
    """A motion on its own skeleton, before retargeting (what the BVH and ASF/AMC readers return).

    Joints are listed parents first. Every joint's rest frame is aligned with the source's
    world axes (BVH rest offsets, ASF bone axes already folded in), so a pose is one local
    rotation per joint in those axes: G_j = G_parent(j) @ local_rot[:, j] and
    p_j = p_parent(j) + G_parent(j) @ offsets[j].
    """

    names: list[str]
    parents: list[int]
    offsets: np.ndarray  # (J, 3) metres, rest offset from the parent joint (root: zeros)
    local_rot: np.ndarray  # (T, J, 3, 3) float64
    root_pos: np.ndarray  # (T, 3) metres, root joint position in the source's world
    fps: float
    hinge_axes: dict[str, np.ndarray] = field(default_factory=dict)  # one-dof joints: axis in rest axes
    first_frame: int = 0  # the file's number of its first frame (AMC numbering; trimmed CMU clips start later)

    @property
    def num_frames(self) -> int:
        return int(self.local_rot.shape[0])

    def index(self, name: str) -> int:
        return self.names.index(name)


@dataclass
class Motion:
    """A motion in the SMPL-X convention (y up, subject's left +x, facing +z at rest, metres).

    body_pose: (T, 21, 3) axis-angle of SMPL-X joints 1..21 relative to their parents.
    root_orient: (T, 3) axis-angle of the pelvis in the (y-up) world.
    transl: (T, 3) root translation in metres: the source's pelvis position for BVH and
        ASF/AMC, SMPL `trans` turned y-up for AMASS.
    joints / rest_joints: for retargeted sources, the source's own positions of the 22 SMPL-X
        joints (T, 22, 3) and the rest skeleton (22, 3) on which
        `smplx_forward_kinematics(body_pose, rest_joints, root_orient)` reproduces `joints`
        (after moving the pelvis to `transl`); None for AMASS.
    """

    body_pose: np.ndarray
    root_orient: np.ndarray
    transl: np.ndarray
    fps: float
    source: str  # "bvh", "asf_amc" or "amass"
    subject: str  # actor / subject id (the file's folder name): split on it, never on frames
    path: str = ""
    joints: np.ndarray | None = None
    rest_joints: np.ndarray | None = None
    skeleton: str = ""  # the joint map that read it (prior.data.skeleton_maps), "amass" for AMASS
    first_frame: int = 0  # the source file's number of frame 0 (AMC numbering, else 0)

    @property
    def num_frames(self) -> int:
        return int(self.body_pose.shape[0])

    def select(self, frames: np.ndarray | slice) -> Motion:
        """A copy holding only the given frames (an index array or a slice)."""
        return Motion(
            body_pose=self.body_pose[frames],
            root_orient=self.root_orient[frames],
            transl=self.transl[frames],
            fps=self.fps,
            source=self.source,
            subject=self.subject,
            path=self.path,
            joints=None if self.joints is None else self.joints[frames],
            rest_joints=self.rest_joints,
            skeleton=self.skeleton,
            first_frame=self.first_frame,
        )
