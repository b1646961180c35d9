"""Loss terms of the fitting objective: one small class per term, found by name.

A term reads an `Evaluation` (the variables of B rows x T frames, the problem,
the posed body, computed once per objective call and shared by all terms) and
returns its unweighted value per frame (B, T). A stage weights terms by name
(`configs/fit.yaml`, weights enter squared as in SMPLify-X); a term whose
variables a problem lacks (hands on a body-only fit) is left out. A new term is
a `Term` subclass decorated with `@register` (`TERMS.register`), and joins a stage through config.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import torch

from body.base import BodyModel
from body.output import BodyOutput
from body.rotations import axis_angle_to_matrix
from body.skeleton import BODY_JOINT_NAMES
from fitting import losses
from fitting.camera import project
from fitting.problem import Problem
from fitting.registry import Registry
from fitting.starts import Anchor
from fitting.targets import BODY, FACE, HAND
from fitting.variables import decoded, flatten, of_part
from prior.pose_spaces import PoseSpace

NUM_SKELETON_JOINTS = len(BODY_JOINT_NAMES)  # pelvis + 21, the joints the temporal terms smooth


@dataclass
class Evaluation:
    """What the terms of one objective call read; the body is posed on first use, once.

    v: variables (B, T, ...) per frame, (B, S) per row (`fitting.variables`); start: the
    variables at the start of the schedule and the skeleton the start stands for (terms
    that keep a fit near its start read it).
    """

    v: dict[str, torch.Tensor]
    start: Anchor
    problem: Problem
    model: BodyModel
    space: PoseSpace
    rho: float

    @property
    def shape_bt(self) -> tuple[int, int]:
        return self.problem.rows, self.problem.frames

    def per_frame(self, x: torch.Tensor) -> torch.Tensor:
        """(B*T,) -> (B, T)."""
        return x.reshape(self.shape_bt)

    @cached_property
    def flat(self) -> dict[str, torch.Tensor]:
        """Variables as (B*T, ...), the row's shape repeated per frame."""
        return flatten(self.v)

    @cached_property
    def body_pose(self) -> torch.Tensor:
        """(B*T, 21, 3) axis-angle body pose of the pose-space variable."""
        return self.space.body_pose(self.flat["pose"])

    @cached_property
    def body(self) -> BodyOutput:
        """The posed body (only the vertices behind keypoints are skinned)."""
        return pose_body(self.model, self.flat, self.body_pose, full_mesh=False)

    @cached_property
    def skeleton(self) -> torch.Tensor:
        """(B*T, 22, 3) `body_skeleton` of the posed body."""
        return body_skeleton(self.body, self.flat["global_orient"])

    @cached_property
    def projected(self) -> torch.Tensor:
        """(B*T, K, 2) model keypoints of the layout, in pixels."""
        n = self.problem.rows * self.problem.frames
        pts = torch.cat([self.body.keypoints(s) for s in self.problem.layout.sets], 1)
        return project(pts, self.problem.focal.reshape(n, 2), self.problem.center.reshape(n, 2))

    def keypoint_data(self, weight: torch.Tensor) -> torch.Tensor:
        """Robust reprojection error (B, T) with per-point weights (B, T, K)."""
        p = self.problem
        n = p.rows * p.frames
        return self.per_frame(
            losses.keypoint_data(
                self.projected, p.xy.reshape(n, -1, 2), weight.reshape(n, -1), p.scale.reshape(n), self.rho
            )
        )


def body_skeleton(body: BodyOutput, global_orient: torch.Tensor) -> torch.Tensor:
    """(N, 22, 3) the pelvis and 21 body joints about the pelvis, in the body's own frame (its global
    orientation undone): the 3D pose, whatever the view."""
    joints = body.joints[:, :NUM_SKELETON_JOINTS]
    return (joints - joints[:, :1]) @ axis_angle_to_matrix(global_orient)


def pose_body(model: BodyModel, flat: dict[str, torch.Tensor], body_pose: torch.Tensor, full_mesh: bool) -> BodyOutput:
    """Pose `model` with flat variables (B*T, ...) and their decoded body pose."""
    return model(full_mesh=full_mesh, **decoded(flat, body_pose))


class Term:
    """A loss term: `name` (its key in a stage's weights), `reads` (variables it needs)."""

    name: ClassVar[str]
    reads: ClassVar[tuple[str, ...]] = ()

    def __call__(self, e: Evaluation) -> torch.Tensor:  # (B, T)
        raise NotImplementedError


TERMS: Registry[Term] = Registry("loss term")
register = TERMS.register


class _PartData(Term):
    """Reprojection of the detections of one part (body, hands or face), confidence x joint weight."""

    part: ClassVar[int]

    def __call__(self, e: Evaluation) -> torch.Tensor:
        p = e.problem
        return e.keypoint_data(p.weight * (p.layout.part == self.part).to(p.weight.dtype))


@register
class BodyData(_PartData):
    name, part = "body_data", BODY


@register
class HandData(_PartData):
    name, part = "hand_data", HAND


@register
class FaceData(_PartData):
    name, part = "face_data", FACE


@register
class TorsoData(Term):
    """Reprojection of the shoulders and hips by confidence alone (the camera stage)."""

    name = "torso_data"

    def __call__(self, e: Evaluation) -> torch.Tensor:
        p = e.problem
        torso = torch.zeros(len(p.layout.names), dtype=p.conf.dtype, device=p.conf.device)
        torso[torch.cat(p.layout.torso)] = 1.0
        return e.keypoint_data(p.conf * torso)


@register
class Depth(Term):
    """Squared change of the depth from its start (the similar-triangles estimate), m^2."""

    name, reads = "depth", ("transl",)

    def __call__(self, e: Evaluation) -> torch.Tensor:
        return (e.v["transl"][..., 2] - e.start.variables["transl"][..., 2]) ** 2


@register
class StartSkeleton(Term):
    """Squared distance (m^2, summed over the 22 body joints) of the body's skeleton from its start's
    (`Anchor.skeleton`; a learned start's is the skeleton of the pose the initialiser predicted, not of
    its encoding in the pose space): the initialiser's 3D reading of the 2D points becomes a prior
    conditioned on them, which keeps what one view cannot see (depth) near what it predicted. The skeleton's bone
    lengths come from the shape, so with the shape free it also holds the shape near the start's."""

    name, reads = "start_skeleton", ("pose",)

    def __call__(self, e: Evaluation) -> torch.Tensor:
        start = e.start.skeleton.reshape(e.skeleton.shape)
        return e.per_frame((e.skeleton - start).square().sum((-1, -2)))


@register
class PosePrior(Term):
    """The pose space's penalty (its negative log-likelihood): 0.5 |z|^2 for VPoser, a GMM's, 0 for none."""

    name, reads = "pose_prior", ("pose",)

    def __call__(self, e: Evaluation) -> torch.Tensor:
        return e.per_frame(e.space.penalty(e.flat["pose"]))


@register
class Bending(Term):
    """SMPLify's angle prior on elbows and knees bending the wrong way."""

    name, reads = "bending", ("pose",)

    def __call__(self, e: Evaluation) -> torch.Tensor:
        return e.per_frame(losses.bending(e.body_pose))


@register
class ShapePrior(Term):
    """|shape|^2 of the row, counted once per frame."""

    name, reads = "shape_prior", ("shape",)

    def __call__(self, e: Evaluation) -> torch.Tensor:
        return losses.squared_norm(e.v["shape"])[:, None].expand(*e.shape_bt)


class _SquaredNorm(Term):
    """|x|^2 summed over the variables it reads."""

    def __call__(self, e: Evaluation) -> torch.Tensor:
        return e.per_frame(sum(losses.squared_norm(e.flat[k]) for k in self.reads))


@register
class HandPrior(_SquaredNorm):
    name, reads = "hand_prior", of_part(HAND)


@register
class JawPrior(_SquaredNorm):
    name, reads = "jaw_prior", ("jaw_pose",)


@register
class ExpressionPrior(_SquaredNorm):
    name, reads = "expression_prior", ("expression",)


class _Smoothness(Term):
    """Squared acceleration (second difference) over linked consecutive frames, charged to the last
    of each three (0 for fewer than three frames): steady motion costs nothing, only its changes do,
    so a moving person is not pulled toward standing still. A window's held overlap frames are its
    first frames, so they give the new frames' boundary."""

    def sequence(self, e: Evaluation) -> torch.Tensor:  # (B, T, D)
        raise NotImplementedError

    def __call__(self, e: Evaluation) -> torch.Tensor:
        b, t = e.shape_bt
        if t < 3:
            return e.v["transl"].new_zeros(b, t)
        change = losses.acceleration(self.sequence(e), e.problem.link)
        return torch.cat([change.new_zeros(b, 2), change], 1)


@register
class SmoothPose(_Smoothness):
    """Rotation matrices of the pelvis and the 21 body joints."""

    name, reads = "smooth_pose", ("pose", "global_orient")

    def sequence(self, e: Evaluation) -> torch.Tensor:
        rot = torch.cat([axis_angle_to_matrix(e.flat["global_orient"])[:, None], axis_angle_to_matrix(e.body_pose)], 1)
        return rot.reshape(*e.shape_bt, -1)


@register
class SmoothTransl(_Smoothness):
    """Translation (m)."""

    name, reads = "smooth_transl", ("transl",)

    def sequence(self, e: Evaluation) -> torch.Tensor:
        return e.v["transl"]


@register
class SmoothJoints(_Smoothness):
    """3D positions of the pelvis and the 21 body joints (m)."""

    name = "smooth_joints"

    def sequence(self, e: Evaluation) -> torch.Tensor:
        return e.body.joints[:, :NUM_SKELETON_JOINTS].reshape(*e.shape_bt, -1)
