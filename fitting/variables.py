"""The fitter's optimisation variables as one table: what each is, how big, and how it is decoded.

Stages name the variables they free, the starter builds them, the objective holds their frozen
frames, the terms pose the body with them and the codec saves them, all from `VARIABLES`. A
variable is per frame (B, T, size) or per row (B, size: one value for all the row's frames, the
shape); it is fitted where the model and the detections have its part (hands, face) or always
(the body's). The pose-space variable is decoded by the pose space into the axis-angle body pose
(saved as `body_pose`, and as `latent` too where the space is latent); axis-angle joint
rotations are (N, joints, 3) for the body model and in saved files; the rest pass as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from body.base import BodyModel
from fitting.targets import BODY, FACE, HAND
from prior.pose_spaces import PoseSpace

POSE = "pose"  # the pose-space variable
SHAPE = "shape"  # the body's shape, one per row
LATENT = "latent"  # saved name of the pose-space variable where the space is latent


@dataclass(frozen=True)
class Variable:
    """One optimisation variable: its name, values per frame (per row when `per_row`), the keypoint
    part it needs, and how it reaches the body model and the saved parameters."""

    name: str
    size: Callable[[BodyModel, PoseSpace], int]  # values of one frame (of one row when per_row)
    per_row: bool = False  # one value per row, shared by its frames
    part: int = BODY  # BODY: always fitted; HAND / FACE: where the model and the detections have the part
    joints: int = 0  # axis-angle rotations of this many joints, (N, joints, 3) decoded; 0: decoded as is
    saved: str = ""  # its decoded name (the body model's argument and the saved parameter); "" = its name

    @property
    def decoded_name(self) -> str:
        return self.saved or self.name

    def dims(self, rows: int, frames: int, model: BodyModel, space: PoseSpace) -> tuple[int, ...]:
        """The shape of its values in `rows` rows of `frames` frames: (B, size), or (B, T, size) per frame."""
        size = self.size(model, space)
        return (rows, size) if self.per_row else (rows, frames, size)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Flat values (N, size) as the body model takes them (not the pose-space variable: see `decoded`)."""
        return x.reshape(len(x), self.joints, 3) if self.joints else x


def _three(model: BodyModel, space: PoseSpace) -> int:
    return 3


# In the order of the saved parameters (the pose-space variable decoded into `body_pose`).
VARIABLES = (
    Variable("global_orient", _three),
    Variable(POSE, lambda model, space: space.dim, saved="body_pose"),
    Variable("transl", _three),
    Variable(SHAPE, lambda model, space: model.num_shape, per_row=True),
    Variable("left_hand_pose", lambda model, space: 45, part=HAND, joints=15),
    Variable("right_hand_pose", lambda model, space: 45, part=HAND, joints=15),
    Variable("jaw_pose", _three, part=FACE),
    Variable("expression", lambda model, space: model.num_expression, part=FACE),
)
BY_NAME = {v.name: v for v in VARIABLES}
NAMES = tuple(BY_NAME)
SAVED = tuple(v.decoded_name for v in VARIABLES)  # the saved body parameters (npz and motion keys)
SAVED_PER_ROW = tuple(v.decoded_name for v in VARIABLES if v.per_row)  # one value for all of a row's frames


def of_part(part: int) -> tuple[str, ...]:
    """The names of the variables of one keypoint part (BODY, HAND, FACE)."""
    return tuple(v.name for v in VARIABLES if v.part == part)


def flatten(v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """(B, T, ...) variables -> (B*T, ...), per-row variables (B, S) repeated per frame."""
    b, t = v["transl"].shape[:2]
    return {
        k: x.repeat_interleave(t, 0) if BY_NAME[k].per_row else x.reshape(b * t, *x.shape[2:]) for k, x in v.items()
    }


def decoded(flat: dict[str, torch.Tensor], body_pose: torch.Tensor) -> dict[str, torch.Tensor]:
    """The body model's arguments (N, ...), by decoded name in table order, from flat variables
    (N, ...) and `body_pose` (N, 21, 3), the pose space's decoding of the pose-space variable."""
    return {
        s.decoded_name: body_pose if s.name == POSE else s.decode(flat[s.name]) for s in VARIABLES if s.name in flat
    }
