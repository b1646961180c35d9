"""Anny (PyPI `anny`, CC0 assets) driven by SMPL-X-convention parameters.

Retarget. We build Anny with its SOMA rig (`anny.Anny(rig="soma")`) and the
`local-ref` pose parameterisation. In that setting Anny already performs the
change of axes and the per-bone rest alignment: the zero pose is a T-pose with
y up, the subject facing +z and the subject's left at +x, and each bone's
rotation acts about world-aligned axes relative to its parent
(G_child = G_parent @ D_child), which is exactly SMPL-X's forward kinematics.
An SMPL-X axis-angle is therefore copied unchanged onto the mapped SOMA bone
(`SMPLX_TO_SOMA`). `tests/test_body_anny.py` checks this against an
independent FK of the SMPL-X tree.

Bones Anny has and SMPL-X lacks stay at identity: `Hips` (between the root and
the spine/legs), `Neck2`, the finger metacarpals (`Hand*1` except the thumb),
`HeadEnd`/`*End` tips and the eyes. Identity is the right share for them
because SMPL-X's own joint already carries the whole rotation of that chain.

Shape: the 6 Anny phenotypes (gender, age, muscle, weight, height,
proportions) through a sigmoid of an unconstrained `shape` (B, 6); zero shape
is a young adult of average build (age 2/3 = Anny's "young" anchor), not
Anny's 0.5 teenager.

Translation: `transl` is the pelvis position (Anny puts the pelvis at the
origin in the zero pose), so `transl` plays the same role as in SMPL-X up to
SMPL-X's shape-dependent pelvis offset.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile

import torch

from body.anny_skeleton import AnnySkeleton
from body.base import ANNY_PHENOTYPES, BodyModel
from body.keypoint_sets import COCO23, HAND21_POINTS
from body.output import BodyOutput
from body.points import BoneBinding, PointDef, PointTable
from body.rotations import axis_angle_to_matrix
from body.skeleton import HAND_JOINT_NAMES, SMPLX_JOINT_NAMES

_SOMA_BODY = (
    "Root",
    "LeftLeg",
    "RightLeg",
    "Spine1",
    "LeftShin",
    "RightShin",
    "Spine2",
    "LeftFoot",
    "RightFoot",
    "Chest",
    "LeftToeBase",
    "RightToeBase",
    "Neck1",
    "LeftShoulder",
    "RightShoulder",
    "Head",
    "LeftArm",
    "RightArm",
    "LeftForeArm",
    "RightForeArm",
    "LeftHand",
    "RightHand",
)
_FINGER = {"index": "Index", "middle": "Middle", "pinky": "Pinky", "ring": "Ring", "thumb": "Thumb"}


def _soma_finger(side: str, joint: str) -> str:
    """SMPL-X finger joint (e.g. 'index2') -> SOMA bone; SOMA's Hand{F}1 is the metacarpal."""
    finger, i = joint[:-1], int(joint[-1])
    return f"{side}Hand{_FINGER[finger]}{i if finger == 'thumb' else i + 1}"


# SMPL-X joint order (55) -> SOMA bone names.
SMPLX_TO_SOMA: tuple[str, ...] = (
    _SOMA_BODY
    + ("Jaw", "LeftEye", "RightEye")
    + tuple(_soma_finger("Left", j) for j in HAND_JOINT_NAMES)
    + tuple(_soma_finger("Right", j) for j in HAND_JOINT_NAMES)
)
assert len(SMPLX_TO_SOMA) == len(SMPLX_JOINT_NAMES)
# Fingertips, appended after the 55 SMPL-X joints in `BodyOutput.joints`.
FINGERTIP_BONES: tuple[str, ...] = tuple(f"{s}Hand{f}End" for s in ("Left", "Right") for f in _FINGER.values())
OUTPUT_BONES = SMPLX_TO_SOMA + FINGERTIP_BONES

# Rest models kept for shapes without grad (`AnnyBody._rest_model`): one per 16-frame call of a
# batch of 256 frames.
REST_CACHE_SIZE = 16

# Zero `shape` maps to these phenotypes: an adult of average build.
DEFAULT_PHENOTYPES = {"gender": 0.5, "age": 2.0 / 3.0, "muscle": 0.5, "weight": 0.5, "height": 0.5, "proportions": 0.5}


class AnnyBody(BodyModel):
    """Anny body model with the SMPL-X parameter interface (see module docstring).

    No expressions (Anny's facial blendshapes are not exposed) and no face
    landmarks; `jaw_pose` drives its Jaw bone."""

    num_shape = 6
    shape_space = ANNY_PHENOTYPES
    has_hands = True
    has_face = False
    num_expression = 0

    def __init__(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        _quiet_warp()
        import anny
        from anny.skinning.skinning import dense_bone_weights

        model = anny.Anny(rig="soma")
        self.model = model.to(device=device, dtype=dtype)
        labels = list(model.bone_labels)
        self.shape_names = list(model.phenotype_labels)
        self.joint_names = list(SMPLX_JOINT_NAMES) + [b.lower() for b in FINGERTIP_BONES]
        index = lambda bones: torch.tensor([labels.index(b) for b in bones], device=device)  # noqa: E731
        self.register_buffer("pose_bones", index(SMPLX_TO_SOMA), persistent=False)
        self.register_buffer("output_bones", index(OUTPUT_BONES), persistent=False)
        offset = [math.log(p / (1 - p)) for p in (DEFAULT_PHENOTYPES[n] for n in self.shape_names)]
        self.register_buffer("shape_offset", torch.tensor(offset, dtype=dtype, device=device), persistent=False)
        self.faces = model.get_triangular_faces().to(device)
        self.num_bones = len(labels)
        assert not model.local_change_labels and not model.facial_action_labels, "anny's SOMA rig changed"
        mask = model.stacked_phenotype_blend_shapes_mask.bool().cpu()
        # Per phenotype blend shape, the variations it multiplies, padded with a column of ones.
        factors = torch.full((mask.shape[0], int(mask.sum(1).max())), mask.shape[1], device=mask.device)
        for i, row in enumerate(mask):
            on = row.nonzero().flatten()
            factors[i, : len(on)] = on
        self.register_buffer("blendshape_factors", factors.to(device), persistent=False)
        self.points = self._point_table(model)
        # Fitting evaluates keypoints at every L-BFGS step and needs none of the mesh:
        # `full_mesh=False` poses a second Anny whose "vertices" are the keypoints'
        # per-bone rest points (`PointTable.bound_to_bones`), each on one bone, so its
        # skinning costs about as much as the skeleton's.
        data = self.model.to_model_data()
        dense = dense_bone_weights(data.vertex_bone_weights, data.vertex_bone_indices, self.num_bones)
        bound = self.points.bound_to_bones(dense)
        self.bone_points = bound.points
        self.bone_model = _vertex_model(self.model, bound.vertices, bound)
        # ... evaluated by our own batched ops (`body.anny_skeleton`), equal to Anny's to rounding;
        # `compact_skeleton = False` runs Anny's own code on it instead (kept for tests and benchmarks).
        self.skeleton = AnnySkeleton(
            self.model, self.bone_model, self.blendshape_factors, self.pose_bones, self.output_bones
        )
        self.compact_skeleton = True
        # The slower path it replaced, kept for tests and benchmarks: skin the keypoints'
        # own mesh vertices (set `keypoint_vertices = True`).
        self.keypoint_vertices = False
        support = self.points.vertex_support()
        self.sparse_points = self.points.restricted_to(support)
        self.sparse_model = _vertex_model(self.model, torch.tensor(support, device=device))
        # Rest models of shapes without grad, oldest first (`_rest_model`).
        self._rest_cache: dict[tuple, dict[str, torch.Tensor]] = {}

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def device(self) -> torch.device:
        return self.model.device

    def phenotypes(self, shape: torch.Tensor) -> torch.Tensor:
        """Unconstrained shape (B, 6) -> Anny phenotypes in (0, 1)."""
        return torch.sigmoid(shape + self.shape_offset)

    def _skin(
        self,
        pose: torch.Tensor,
        shape: torch.Tensor,
        expression: torch.Tensor,
        transl: torch.Tensor | None,
        full_mesh: bool,
    ) -> BodyOutput:
        """Anny's skinning of the SOMA rig; `expression` is always empty (B, 0)."""
        if not full_mesh and not self.keypoint_vertices and self.compact_skeleton:
            offsets = self._rest_model(self.skeleton, shape)
            vertices, joints = self.skeleton.pose(pose, transl, offsets)
            return BodyOutput(vertices=vertices, joints=joints, points=self.bone_points)
        batch = pose.shape[0]
        kw = dict(device=self.device, dtype=self.dtype)
        rot = torch.eye(3, **kw).expand(batch, self.num_bones, 3, 3).clone()
        rot[:, self.pose_bones] = axis_angle_to_matrix(pose)
        trans = torch.zeros(batch, self.num_bones, 3, 1, **kw)
        if transl is not None:
            trans[:, 0, :, 0] = transl
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], **kw).expand(batch, self.num_bones, 1, 4)
        deltas = torch.cat([torch.cat([rot, trans], dim=3), bottom], dim=2)
        if full_mesh:
            model, points = self.model, self.points
        elif self.keypoint_vertices:
            model, points = self.sparse_model, self.sparse_points
        else:
            model, points = self.bone_model, self.bone_points
        # Anny's forward (`RiggedModelWithLinearBlendShapes.forward`) step by step, with
        # its blend-shape coefficients from `AnnySkeleton.coefficients`.
        rest = self._rest_model(model, shape)
        transforms, bone_poses = model.get_bone_transforms(deltas, rest["rest_bone_poses"])
        vertices = model.get_skinned_vertices(rest["rest_vertices"], transforms)
        return BodyOutput(vertices=vertices, joints=bone_poses[:, self.output_bones, :3, 3], points=points)

    def _rest_model(self, model, shape: torch.Tensor):
        """`model`'s rest model for `shape` (B, 6): Anny's rest vertices, bone heads and bone poses,
        or for `self.skeleton` its offsets (`AnnySkeleton.rest`). A shape that does not require
        grad (a stage that holds it, a no-grad pass) is looked up by its exact bits, size, device
        and dtype among the last REST_CACHE_SIZE computed: the same numbers, computed from the same
        values in a call of the same size."""
        if model is self.skeleton:
            compute = lambda s: model.rest(self.phenotypes(s))  # noqa: E731
        else:
            compute = lambda s: model.get_rest_model(self.skeleton.coefficients(self.phenotypes(s)))  # noqa: E731
        if shape.requires_grad:
            return compute(shape)
        key = (id(model), shape.device, shape.dtype, tuple(shape.shape), shape.detach().cpu().numpy().tobytes())
        if key not in self._rest_cache:
            with torch.no_grad():
                self._rest_cache[key] = compute(shape)
            if len(self._rest_cache) > REST_CACHE_SIZE:
                del self._rest_cache[next(iter(self._rest_cache))]
        return self._rest_cache[key]

    def _point_table(self, model) -> PointTable:
        """Detector keypoints on Anny: its COCO regressor, bone heads and a few picked vertices."""
        from anny import KeypointsRegressor

        reg = KeypointsRegressor.coco(model)
        points: dict[str, PointDef] = {}
        for k, name in enumerate(reg.labels):
            # Keep the largest weights that carry 99.9 % of the mass (the ears spread
            # over 4k vertices, 200 of which carry all but 0.1 %), renormalised.
            w, order = reg.regression_weights[k].sort(descending=True)
            keep = int((w.cumsum(0) < 0.999).sum()) + 1
            w = w[:keep] / w[:keep].sum()
            points[name] = PointDef(vertices={int(i): float(a) for i, a in zip(order[:keep], w)})
        assert set(COCO23) <= set(points), "anny's COCO regressor changed"

        def bone(name: str) -> PointDef:  # a SOMA bone head among the output joints
            return PointDef.joint(OUTPUT_BONES.index(name))

        mid = lambda a, b: PointDef.blend((points[a], 0.5), (points[b], 0.5))  # noqa: E731
        points["neck"] = mid("left_shoulder", "right_shoulder")
        points["mid_hip"] = mid("left_hip", "right_hip")
        for side, s in (("left", "Left"), ("right", "Right")):
            points[f"{side}_foot_index"] = PointDef.blend(
                (points[f"{side}_big_toe"], 0.7), (points[f"{side}_small_toe"], 0.3)
            )
            points[f"{side}_index"] = bone(f"{s}HandIndex2")
            points[f"{side}_pinky"] = bone(f"{s}HandPinky2")
            points[f"{side}_thumb"] = bone(f"{s}HandThumb3")
            for p in HAND21_POINTS:
                points[f"{side}_hand_{p}"] = bone(_hand21_bone(s, p))
        # Eye corners and mouth corners: the rest-mesh vertex nearest to a point
        # offset from the regressed eye / nose (metres; T-pose, facing +z).
        rest = model(
            None,
            torch.tensor(
                [list(DEFAULT_PHENOTYPES[n] for n in self.shape_names)], dtype=model.dtype, device=model.device
            ),
        )
        verts = rest["vertices"][0]
        kp = reg(rest)[0]
        at = {n: kp[i] for i, n in enumerate(reg.labels)}
        front = verts[:, 2] > at["nose"][2] - 0.06

        def nearest(target: torch.Tensor) -> PointDef:
            d = (verts - target).norm(dim=1) + (~front).to(verts.dtype) * 1e3
            return PointDef.vertex(int(d.argmin()))

        off = lambda x, y, z: verts.new_tensor([x, y, z])  # noqa: E731
        for side, sx in (("left", 1.0), ("right", -1.0)):
            points[f"{side}_eye_outer"] = nearest(at[f"{side}_eye"] + off(sx * 0.017, 0.0, -0.004))
            points[f"{side}_eye_inner"] = nearest(at[f"{side}_eye"] + off(-sx * 0.015, 0.0, -0.004))
            points[f"mouth_{side}"] = nearest(at["nose"] + off(sx * 0.024, -0.045, -0.01))
        return PointTable(points, verts.shape[0], len(OUTPUT_BONES))


def _hand21_bone(side: str, point: str) -> str:
    """OpenPose hand point ('wrist', 'index1'..'index4', ...) -> SOMA bone whose head it is."""
    if point == "wrist":
        return f"{side}Hand"
    finger, i = point[:-1], int(point[-1])
    f = _FINGER[finger]
    if i == 4:
        return f"{side}Hand{f}End"
    return f"{side}Hand{f}{i if finger == 'thumb' else i + 1}"


def _quiet_warp() -> None:
    """Before Anny starts Warp: hide its banner, "Module ... load" lines and, on
    machines without an NVIDIA driver, its native "Could not find or load the
    NVIDIA CUDA driver" line; other start-up output is passed on. Skipped when
    BODYFIT_VERBOSE is set (keypoints.set_verbose)."""
    if os.environ.get("BODYFIT_VERBOSE", "").strip().lower() not in ("", "0", "false", "no", "off"):
        return
    import warp as wp

    wp.config.log_level = wp.LOG_WARNING
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        try:
            os.dup2(log.fileno(), 2)
            wp.init()  # Anny's own wp.init() is then a no-op
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            for line in log.read().decode(errors="replace").splitlines(keepends=True):
                if "Could not find or load the NVIDIA CUDA driver" not in line:
                    sys.stderr.write(line)


def _vertex_model(model, vertex_ids: torch.Tensor, bound: BoneBinding | None = None):
    """An Anny identical to `model` but for its vertices (no faces): the mesh vertices
    `vertex_ids`, or with `bound` its per-bone rest points, each on its one bone (rest
    shape and blend shapes mixed from the mesh's by `bound.mix`, in float64)."""
    import dataclasses

    import anny

    data = model.to_model_data()
    ids = vertex_ids.to(data.template_vertices.device)
    if bound is None:
        pick = lambda x: x[..., ids, :]  # noqa: E731
        weights, indices = data.vertex_bone_weights[ids], data.vertex_bone_indices[ids]
        dominant = ids
    else:
        mix = bound.mix.to(ids.device)
        pick = lambda x: torch.einsum("pn,...nd->...pd", mix, x[..., ids, :].double()).to(x.dtype)  # noqa: E731
        indices = bound.bones[:, None].to(device=ids.device, dtype=data.vertex_bone_indices.dtype)
        weights = torch.ones(indices.shape, dtype=data.vertex_bone_weights.dtype, device=ids.device)
        dominant = ids[mix.argmax(1)]
    data = dataclasses.replace(
        data,
        template_vertices=pick(data.template_vertices),
        blendshapes=pick(data.blendshapes),
        vertex_bone_weights=weights,
        vertex_bone_indices=indices,
        base_mesh_vertex_indices=data.base_mesh_vertex_indices[dominant],
        faces=data.faces[:0],
    )
    return anny.Anny.from_model_data(
        data,
        pose_parameterization=model.pose_parameterization,
        bone_orientation=model.bone_orientation,
        root_identity_orientation=model.root_identity_orientation,
    )
