"""Anatomical joint limits for judging body poses (evaluation only, not used in training).

Angles are in the SMPL-X convention: each joint's axis-angle acts about world-aligned
axes of its parent (T-pose rest: y up, subject's left +x, facing +z). Limits are written
for the left side and the spine; a right joint is checked by mirroring the pose through
x = 0 (`prior.data.mirror.mirror_body_pose`) and applying the left limit.

Hinges and the spine use intrinsic Euler angles R = R_a(t1) R_b(t2) R_c(t3) for the order
"abc", the bone's own axis last (twist) and the small off-plane angle in the middle:

| joint | order | flexion / main (deg) | middle | twist |
|---|---|---|---|---|
| knee | XZY | X in [-10, 160] (+X flexes, the ankle goes back; < 0 is hyperextension) | Z +-25 | Y +-45 |
| elbow | YZX | Y in [-155, 10] (left: -Y flexes, the hand comes forward; > 0 is hyperextension) | Z +-35 | X +-100 |
| spine1/2/3 | XZY | X in [-40, 80] (+X bends forward) | Z +-40 | Y +-45 |
| neck | XZY | X in [-60, 70] | Z +-50 | Y +-80 |
| head | XZY | X in [-60, 60] | Z +-50 | Y +-80 |

Hips and shoulders (ball joints) use swing-twist about the bone's T-pose direction
(hip: -y; left shoulder: +x): the limb may swing at most 150 deg from the T-pose, may
not point backwards beyond a bound on its direction's z (hip: z >= -0.6, i.e. about
37 deg of extension; shoulder: z >= -0.82, about 55 deg behind the frontal plane), the
left thigh may not cross the midline by more than x >= -0.75 (about 48 deg), and
twists about the bone within +-110 deg (hip) or +-150 deg (shoulder; measured from the
T-pose frame, so arm-down poses already carry some twist). Knees and elbows may bend
a little further than the textbook ~150 deg because mocap of deep squats does.
Collars, wrists, ankles and feet are not limited.

On the shared mocap (30 fps, retargeted) 97.6 % of the held-out poses pass every limit
and 94.4 % of the training poses; the rest are extreme real poses (deep squats, crossed
legs) and glitches (the head of cmu_bvh salsa/06.bvh is flipped in every frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch

from body.rotations import axis_angle_to_matrix
from body.skeleton import BODY_JOINT_NAMES, HINGE_FLEXION_AXES
from prior.data.mirror import POSE_MIRROR, mirror_body_pose

# body_pose index (0..20) of each named joint (pelvis excluded).
POSE_INDEX = {name: i - 1 for i, name in enumerate(BODY_JOINT_NAMES) if i > 0}
# Unit axis about which each hinge flexes (positive angle = anatomical flexion); also
# used by prior.data.build to drop frames whose knees or elbows bend backwards.


@dataclass(frozen=True)
class EulerLimit:
    """Ranges (degrees) of the three intrinsic Euler angles of `order`."""

    order: str
    ranges: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]

    def within(self, rot: torch.Tensor) -> torch.Tensor:
        """(N, 3, 3) -> (N,) bool."""
        angles = roma.rotmat_to_euler(self.order, rot, degrees=True)
        lo = angles.new_tensor([r[0] for r in self.ranges])
        hi = angles.new_tensor([r[1] for r in self.ranges])
        return ((angles >= lo) & (angles <= hi)).all(-1)


@dataclass(frozen=True)
class SwingTwistLimit:
    """Ball joint: swing of the bone direction and twist about it (degrees)."""

    bone: tuple[float, float, float]
    max_swing: float
    min_direction: tuple[float, float, float]  # lower bounds of the swung bone direction's x, y, z
    twist: tuple[float, float]

    def within(self, rot: torch.Tensor) -> torch.Tensor:
        """(N, 3, 3) -> (N,) bool."""
        axis = rot.new_tensor(self.bone)
        direction = rot @ axis
        swing = torch.rad2deg(torch.arccos((direction @ axis).clamp(-1.0, 1.0)))
        quat = roma.rotmat_to_unitquat(rot)  # (x, y, z, w)
        twist = torch.rad2deg(2.0 * torch.atan2(quat[..., :3] @ axis, quat[..., 3]))
        twist = (twist + 180.0) % 360.0 - 180.0
        return (
            (swing <= self.max_swing)
            & (direction >= direction.new_tensor(self.min_direction)).all(-1)
            & (twist >= self.twist[0])
            & (twist <= self.twist[1])
        )


_SPINE = EulerLimit("XZY", ((-40, 80), (-40, 40), (-45, 45)))
LIMITS: dict[str, EulerLimit | SwingTwistLimit] = {
    "left_knee": EulerLimit("XZY", ((-10, 160), (-25, 25), (-45, 45))),
    "left_elbow": EulerLimit("YZX", ((-155, 10), (-35, 35), (-100, 100))),
    "left_hip": SwingTwistLimit((0.0, -1.0, 0.0), 150.0, (-0.75, -1.0, -0.6), (-110, 110)),
    "spine1": _SPINE,
    "spine2": _SPINE,
    "spine3": _SPINE,
    "neck": EulerLimit("XZY", ((-60, 70), (-50, 50), (-80, 80))),
    "head": EulerLimit("XZY", ((-60, 60), (-50, 50), (-80, 80))),
    "left_shoulder": SwingTwistLimit((1.0, 0.0, 0.0), 150.0, (-1.0, -1.0, -math.sin(math.radians(55))), (-150, 150)),
}


def joint_violations(body_pose: torch.Tensor) -> torch.Tensor:
    """(N, 21, 3) axis-angle -> (N, 21) bool: True where a joint breaks its limit."""
    body_pose = body_pose.reshape(-1, len(POSE_INDEX), 3)
    out = torch.zeros(body_pose.shape[:2], dtype=torch.bool, device=body_pose.device)
    for pose, flip in ((body_pose, False), (mirror_body_pose(body_pose), True)):
        rot = axis_angle_to_matrix(pose)
        for name, limit in LIMITS.items():
            i = POSE_INDEX[name]
            j = POSE_MIRROR[i] if flip else i  # the joint of the original pose this checks
            out[:, j] |= ~limit.within(rot[:, i])
    return out


def within_limits(body_pose: torch.Tensor) -> torch.Tensor:
    """(N, 21, 3) axis-angle -> (N,) bool: every limited joint within its range."""
    return ~joint_violations(body_pose).any(-1)


def bend_backwards(body_pose: torch.Tensor, joint: str | torch.Tensor, degrees: float = 60.0) -> torch.Tensor:
    """Replace a hinge's rotation by a pure backward bend (hyperextension) of `degrees`.

    `joint` is a hinge name ("left_knee", ...) or an (N,) tensor of indices into
    `HINGE_FLEXION_AXES` (one hinge per pose).
    """
    names = list(HINGE_FLEXION_AXES)
    idx = torch.full((body_pose.shape[0],), names.index(joint)) if isinstance(joint, str) else joint
    axes = body_pose.new_tensor([HINGE_FLEXION_AXES[n] for n in names])[idx]
    rows = torch.arange(body_pose.shape[0])
    cols = torch.tensor([POSE_INDEX[n] for n in names])[idx]
    out = body_pose.clone()
    out[rows, cols] = -math.radians(degrees) * axes
    return out
