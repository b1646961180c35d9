"""Start values: the variables a problem's rows start from, and the anchor terms hold a fit near.

The default start is the pose space's mean pose and the average shape, turned as the 2D
torso suggests and placed over it (SMPLify-X); start hypotheses (`fitting.hypotheses`)
override variables of some rows with their `Start`s.
"""

from __future__ import annotations

from typing import Sequence

import torch

from body.base import BodyModel
from body.keypoint_sets import keypoint_names
from body.skeleton import NUM_BODY_JOINTS
from fitting.camera import TorsoView, init_translation, initial_orientation, torso_view
from fitting.objective import RowCalls
from fitting.problem import Problem
from fitting.starts import Anchor, Start
from fitting.targets import BODY, HAND
from fitting.terms import body_skeleton, pose_body
from fitting.variables import BY_NAME, POSE, SHAPE, VARIABLES, Variable, flatten
from prior.pose_spaces import PoseSpace


class Starter:
    """Start variables and anchors for one body model and pose space (`side_view_cos`: a torso whose
    shoulders look narrower than this fraction of their width is a side view)."""

    def __init__(self, model: BodyModel, space: PoseSpace, side_view_cos: float, calls: RowCalls) -> None:
        self.model = model
        self.space = space
        self.side_view_cos = side_view_cos
        self.calls = calls
        with torch.no_grad():  # shoulder width / torso length of the average body, to read yaw off 2D shoulders
            k = model(shape=torch.zeros(1, model.num_shape, device=model.device, dtype=model.dtype)).keypoints(
                "coco17"
            )[0]
        at = {n: k[i] for i, n in enumerate(keypoint_names("coco17"))}
        shoulders = (at["left_shoulder"] + at["right_shoulder"]) / 2
        hips = (at["left_hip"] + at["right_hip"]) / 2
        self.width_ratio = float((at["left_shoulder"] - at["right_shoulder"]).norm() / (shoulders - hips).norm())

    def torso_view(self, problem: Problem) -> TorsoView:
        """Roll, yaw and side-view flag of every frame (B*T), from its 2D torso."""
        n = problem.rows * problem.frames
        return torso_view(
            problem.xy.reshape(n, -1, 2),
            problem.body_conf().reshape(n, -1),
            problem.layout.torso,
            problem.layout.shoulders,
            self.width_ratio,
            self.side_view_cos,
        )

    def start(
        self,
        problem: Problem,
        blocks: Sequence[tuple[torch.Tensor, Start]] = (),
        view: TorsoView | None = None,
        shape: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Start variables (B, T, ...): the prior's mean pose, average shape, turned as the 2D torso
        suggests (`view` of the B*T frames when already known); `blocks` (rows, start) override
        variables of some rows (values (M, ...) per row, the same for all its frames). Rows whose
        translation is not given are placed over their torso; then `shape` (S,), where given, is
        every row's shape."""
        b, t, n = problem.rows, problem.frames, problem.rows * problem.frames
        kw = dict(device=self.model.device, dtype=self.model.dtype)
        view = self.torso_view(problem) if view is None else view
        given = {
            POSE: self.space.initial(n, self.model.device, self.model.dtype).reshape(b, t, -1),
            "global_orient": initial_orientation(view.roll, view.yaw).reshape(b, t, 3),
        }
        v = {}
        for s in self.variables(problem):
            v[s.name] = given[s.name] if s.name in given else torch.zeros(s.dims(b, t, self.model, self.space), **kw)
        placed = torch.zeros(b, dtype=torch.bool, device=self.model.device)
        for rows, given_start in blocks:
            rows = rows.to(self.model.device)
            for k, x in given_start.values.items():
                if k in v:
                    old = v[k][rows]  # per row (M, S); per frame (M, T, ...), one value for all T frames
                    x = x.reshape(old.shape) if BY_NAME[k].per_row else x.reshape(len(rows), 1, *old.shape[2:])
                    v[k][rows] = x.to(**kw).expand_as(old)
            if "transl" in given_start.values:
                placed[rows] = True

        def points(rows: torch.Tensor) -> torch.Tensor:  # the body's points about its pelvis (R, T, K, 3)
            flat = flatten({k: x[rows] for k, x in v.items()})
            body = pose_body(self.model, flat, self.space.body_pose(flat[POSE]), full_mesh=False)
            return torch.cat([body.keypoints(s) for s in problem.layout.sets], 1).reshape(len(rows), t, -1, 3)

        with torch.no_grad():  # for the rows still at zero translation
            pts = self.calls.over(problem, points).reshape(n, -1, 3)
        transl = init_translation(
            problem.xy.reshape(n, -1, 2),
            problem.body_conf().reshape(n, -1),
            pts,
            problem.layout.torso,
            problem.focal.reshape(n, 2),
            problem.center.reshape(n, 2),
        )
        v["transl"] = torch.where(placed[:, None, None], v["transl"], transl.reshape(b, t, 3))
        if shape is not None:
            v[SHAPE] = shape.to(v[SHAPE]).reshape(1, -1).expand_as(v[SHAPE]).clone()
        return v

    def anchor(
        self, problem: Problem, v: dict[str, torch.Tensor], blocks: Sequence[tuple[torch.Tensor, Start]] = ()
    ) -> Anchor:
        """What terms keeping a fit near its start read: the start variables `v` (B, T, ...) and the
        skeleton of the body each row starts as, posed with the `body_pose` of a block's (rows, start)
        where it gives one."""
        b, t = problem.rows, problem.frames
        start = {k: x.detach().clone() for k, x in v.items()}
        given = torch.zeros(b, dtype=torch.bool, device=self.model.device)
        poses = torch.zeros(b, t, NUM_BODY_JOINTS, 3, device=self.model.device, dtype=self.model.dtype)
        for rows, given_start in blocks:
            if given_start.body_pose is not None:
                rows = rows.to(self.model.device)
                poses[rows] = given_start.body_pose.to(poses).reshape(len(rows), -1, NUM_BODY_JOINTS, 3)
                given[rows] = True

        def skeleton(rows: torch.Tensor) -> torch.Tensor:
            flat = flatten({k: x[rows] for k, x in start.items()})
            own = given[rows].repeat_interleave(t)[:, None, None]
            body_pose = torch.where(own, poses[rows].flatten(0, 1), self.space.body_pose(flat[POSE]))
            body = pose_body(self.model, flat, body_pose, full_mesh=False)
            return body_skeleton(body, flat["global_orient"]).reshape(len(rows), t, -1, 3)

        with torch.no_grad():
            return Anchor(start, self.calls.over(problem, skeleton))

    def variables(self, problem: Problem) -> list[Variable]:
        """The variables fitted on `problem`: the body's, and those of the parts (hands, face) that both
        the model and the problem's detections have."""
        return [s for s in VARIABLES if s.part == BODY or self._uses(problem, s.part)]

    def _uses(self, problem: Problem, part: int) -> bool:
        has = self.model.has_hands if part == HAND else self.model.has_face
        return has and bool((problem.conf[..., problem.layout.part == part] > 0).any())
