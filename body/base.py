"""The contract every body back end implements: `BodyModel`.

A back end subclasses `BodyModel`, sets the contract attributes below and
implements `_skin` (its own skinning) plus the `device` and `dtype` properties.
`BodyModel.forward` does everything else: it checks the keyword tensors,
assembles the (B, 55, 3) SMPL-X-order pose and fills in defaults, so every back
end takes the same arguments and rejects bad ones with the same messages.
"""

from __future__ import annotations

import abc

import torch

from body.output import BodyOutput
from body.points import PointTable
from body.skeleton import HAND_JOINT_NAMES, NUM_BODY_JOINTS, SMPLX_JOINT_NAMES

# The 55-joint SMPL-X pose as (argument, joints) blocks in joint order; the eyes
# (None) take no argument and stay at zero.
_POSE_LAYOUT: tuple[tuple[str | None, int], ...] = (
    ("global_orient", 1),
    ("body_pose", NUM_BODY_JOINTS),
    ("jaw_pose", 1),
    (None, 2),
    ("left_hand_pose", len(HAND_JOINT_NAMES)),
    ("right_hand_pose", len(HAND_JOINT_NAMES)),
)
assert sum(n for _, n in _POSE_LAYOUT) == len(SMPLX_JOINT_NAMES)

# What a model's `shape` means (`BodyModel.shape_space`); models of one space take each other's shapes.
ANNY_PHENOTYPES = "anny_phenotypes"  # Anny's 6 phenotypes, as logits about its default adult
SMPLX_BETAS = "smplx_betas"  # SMPL-X's PCA shape coefficients


class BodyModel(torch.nn.Module, metaclass=abc.ABCMeta):
    """A body model driven by SMPL-X-convention parameters: y up, subject's left +x, facing +z,
    metres; a T-pose rest whose joint frames are aligned with the world axes (docs/body.md).

    Contract attributes, set by every back end:
      num_shape       length of `shape` (SMPL-X betas, or Anny's phenotypes)
      shape_space     what `shape` means: ANNY_PHENOTYPES or SMPLX_BETAS
      shape_names     a name per `shape` entry
      has_hands       takes `left_hand_pose` / `right_hand_pose`
      has_face        has face landmarks (the "face68" keypoint set) to fit a face to
      num_expression  length of `expression`; 0 when the model has no expressions
      faces           (F, 3) long tensor of vertex indices
      points          the `PointTable` placing detector keypoints on the body
      joint_names     names of `BodyOutput.joints` (the 55 SMPL-X joints first)
    Every back end has the 55 SMPL-X joints, so `jaw_pose` is always accepted.
    """

    num_shape: int
    shape_space: str
    shape_names: list[str]
    has_hands: bool
    has_face: bool
    num_expression: int
    faces: torch.Tensor
    points: PointTable
    joint_names: list[str]

    @property
    @abc.abstractmethod
    def device(self) -> torch.device:
        """Device of the model's tensors (inputs are moved here)."""

    @property
    @abc.abstractmethod
    def dtype(self) -> torch.dtype:
        """Floating dtype of the model's tensors (inputs are cast to it)."""

    def keypoint_sets(self) -> list[str]:
        """Names of the detector keypoint sets `BodyOutput.keypoints` can give on this model."""
        return self.points.supported_sets()

    def forward(
        self,
        *,
        global_orient: torch.Tensor | None = None,
        body_pose: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
        shape: torch.Tensor | None = None,
        left_hand_pose: torch.Tensor | None = None,
        right_hand_pose: torch.Tensor | None = None,
        jaw_pose: torch.Tensor | None = None,
        expression: torch.Tensor | None = None,
        full_mesh: bool = True,
    ) -> BodyOutput:
        """Pose the body. Shapes: global_orient (B, 3), body_pose (B, 21, 3) or (B, 63),
        transl (B, 3), shape (B, num_shape), hands (B, 15, 3) or (B, 45), jaw_pose (B, 3),
        expression (B, num_expression); a missing one is zero (B is 1 when none is given).
        With `full_mesh=False` a back end may skin only what keypoints need (`vertices`
        then holds its own points, e.g. the keypoints' per-bone rest points skinned, not
        mesh vertices); joints and keypoints are the same up to rounding.
        Raises ValueError for a wrong shape, a batch mismatch or a part the model lacks
        (an empty (B, 0) expression is accepted when num_expression is 0)."""
        given = {
            name: t
            for name, t in (
                ("global_orient", global_orient),
                ("body_pose", body_pose),
                ("transl", transl),
                ("shape", shape),
                ("left_hand_pose", left_hand_pose),
                ("right_hand_pose", right_hand_pose),
                ("jaw_pose", jaw_pose),
                ("expression", expression),
            )
            if t is not None
        }
        batch = self._check(given)
        kw = dict(device=self.device, dtype=self.dtype)

        def part(name: str | None, joints: int) -> torch.Tensor:
            t = given.get(name) if name else None
            return torch.zeros(batch, joints, 3, **kw) if t is None else t.reshape(batch, joints, 3).to(**kw)

        def vector(name: str, size: int) -> torch.Tensor:
            t = given.get(name)
            return torch.zeros(batch, size, **kw) if t is None else t.to(**kw)

        pose = torch.cat([part(name, n) for name, n in _POSE_LAYOUT], dim=1)
        return self._skin(
            pose,
            vector("shape", self.num_shape),
            vector("expression", self.num_expression),
            None if transl is None else transl.to(**kw),
            full_mesh,
        )

    @abc.abstractmethod
    def _skin(
        self,
        pose: torch.Tensor,
        shape: torch.Tensor,
        expression: torch.Tensor,
        transl: torch.Tensor | None,
        full_mesh: bool,
    ) -> BodyOutput:
        """The back end's skinning. pose (B, 55, 3) axis-angles in SMPL-X joint order,
        shape (B, num_shape), expression (B, num_expression), transl (B, 3) or None;
        all on the model's device and dtype."""

    def _check(self, given: dict[str, torch.Tensor]) -> int:
        """Validate the given tensors against the model; return their common batch size."""
        accepted: dict[str, tuple[tuple[int, ...], ...]] = {
            name: ((3,),) if n == 1 else ((n, 3), (3 * n,)) for name, n in _POSE_LAYOUT if name
        }
        accepted.update(transl=((3,),), shape=((self.num_shape,),), expression=((self.num_expression,),))
        lacking = {"expression": "it has no expressions (num_expression is 0)"} if self.num_expression == 0 else {}
        if not self.has_hands:
            lacking.update(left_hand_pose="it has no hands", right_hand_pose="it has no hands")
            accepted.update(left_hand_pose=(), right_hand_pose=())
        first: tuple[str, torch.Tensor] | None = None
        for name, t in given.items():
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
            if t.ndim == 0 or tuple(t.shape[1:]) not in accepted[name]:
                if name in lacking:
                    raise ValueError(f"{type(self).__name__} does not take {name}: {lacking[name]}")
                expected = " or ".join(_shape_text("B", s) for s in accepted[name])
                raise ValueError(f"{name} has shape {tuple(t.shape)}; expected {expected}")
            if first is None:
                first = (name, t)
            elif t.shape[0] != first[1].shape[0]:
                b = first[1].shape[0]
                expected = " or ".join(_shape_text(b, s) for s in accepted[name])
                raise ValueError(
                    f"batch size mismatch: {name} has shape {tuple(t.shape)}, expected {expected} "
                    f"to match {first[0]} of shape {tuple(first[1].shape)}"
                )
        return 1 if first is None else first[1].shape[0]


def _shape_text(batch: int | str, shape: tuple[int, ...]) -> str:
    """'(B, 21, 3)'-style text of a batched shape."""
    return "(" + ", ".join(str(d) for d in (batch, *shape)) + ")"
