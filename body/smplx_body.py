"""The user's SMPL-X model (from their own files) behind the common interface.

Skinning uses `smplx.lbs.lbs`; the files are read by `body.smplx_files`, never
by `smplx`'s own loader (which unpickles user files without restriction).
Hand poses are full 15x3 axis-angles relative to the flat hand (no PCA), as
for Anny, so one parameter layout serves both models.

`full_mesh=False` runs the same `lbs` on a small mesh of its own: the
keypoints' per-bone rest points (`PointTable.bound_to_bones`; their shape
and pose blend shapes are the rows mixed from the full model's, so pose
correctives stay exact) followed by the rest joints (regressed by identity).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from smplx.lbs import lbs
from smplx.vertex_ids import vertex_ids

from body.base import SMPLX_BETAS, BodyModel
from body.keypoint_sets import COCO23, FACE68, HAND21_POINTS
from body.output import BodyOutput
from body.points import PointDef, PointTable
from body.skeleton import SMPLX_JOINT_NAMES
from body.smplx_files import ModelFileError, find_model_file, load_model_arrays

_FRONTAL_CONTOUR_BIN = 39  # dynamic contour landmarks are binned by head yaw -39..39 deg
_SHAPE_SPACES = {20: 10, 400: 300}  # shapedirs components -> how many are betas (the rest: expressions)


class SmplxBody(BodyModel):
    """SMPL-X with `shape` = betas (B, num_betas) and `expression` (B, num_expression)."""

    shape_space = SMPLX_BETAS
    has_hands = True
    has_face = True

    def __init__(
        self,
        model_path: str | Path,
        gender: str = "neutral",
        num_betas: int = 10,
        num_expression: int = 10,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.path = find_model_file(model_path, gender)
        data = load_model_arrays(self.path)
        t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device)  # noqa: E731
        shapedirs = data["shapedirs"]
        num_shape_total = shapedirs.shape[2]
        if num_shape_total not in _SHAPE_SPACES:
            raise ModelFileError(
                f"{self.path}: shapedirs has {num_shape_total} components; expected 20 (SMPL-X v1.0: "
                f"10 betas + 10 expressions) or 400 (v1.1: 300 + 100)"
            )
        shape_space = _SHAPE_SPACES[num_shape_total]
        self.num_shape = min(num_betas, shape_space)
        self.num_expression = min(num_expression, num_shape_total - shape_space)
        self.register_buffer("v_template", t(data["v_template"]))
        self.register_buffer("shapedirs", t(shapedirs[:, :, : self.num_shape]))
        self.register_buffer("exprdirs", t(shapedirs[:, :, shape_space : shape_space + self.num_expression]))
        posedirs = data["posedirs"]
        self.register_buffer("posedirs", t(posedirs.reshape(-1, posedirs.shape[-1]).T))
        self.register_buffer("J_regressor", t(data["J_regressor"]))
        self.register_buffer("lbs_weights", t(data["weights"]))
        parents = data["kintree_table"][0].astype(np.int64)
        parents[0] = -1
        self.register_buffer("parents", torch.as_tensor(parents, device=device))
        self.faces = torch.as_tensor(data["f"].astype(np.int64), device=device)
        self.joint_names = list(SMPLX_JOINT_NAMES)
        self.shape_names = [f"beta{i}" for i in range(self.num_shape)]
        self.points = _point_table(data, self.v_template.shape[0], len(SMPLX_JOINT_NAMES))
        bound = self.points.bound_to_bones(torch.as_tensor(np.asarray(data["weights"], np.float64), device="cpu"))
        self.bone_points = bound.points
        dirs = np.concatenate(
            [shapedirs[:, :, : self.num_shape], shapedirs[:, :, shape_space : shape_space + self.num_expression]], 2
        )
        for name, array in _bone_mesh(
            data, dirs, bound.mix.numpy(), bound.vertices.numpy(), bound.bones.numpy()
        ).items():
            self.register_buffer(f"bone_{name}", t(array))

    @property
    def dtype(self) -> torch.dtype:
        return self.v_template.dtype

    @property
    def device(self) -> torch.device:
        return self.v_template.device

    def _skin(
        self,
        pose: torch.Tensor,
        shape: torch.Tensor,
        expression: torch.Tensor,
        transl: torch.Tensor | None,
        full_mesh: bool,
    ) -> BodyOutput:
        """Linear blend skinning of the full mesh, or of the keypoints' own small mesh."""
        if full_mesh:
            mesh = (self.v_template, torch.cat([self.shapedirs, self.exprdirs], dim=2), self.posedirs)
            mesh += (self.J_regressor, self.lbs_weights)
        else:
            mesh = (self.bone_template, self.bone_shapedirs, self.bone_posedirs, self.bone_regressor, self.bone_weights)
        verts, joints = lbs(
            torch.cat([shape, expression], dim=1), pose.reshape(pose.shape[0], -1), *mesh[:4], self.parents, mesh[4]
        )
        if transl is not None:
            verts = verts + transl[:, None]
            joints = joints + transl[:, None]
        if full_mesh:
            return BodyOutput(vertices=verts, joints=joints, points=self.points)
        return BodyOutput(vertices=verts[:, : self.bone_points.num_vertices], joints=joints, points=self.bone_points)


def _bone_mesh(
    data: dict[str, np.ndarray], dirs: np.ndarray, mix: np.ndarray, vertex_ids: np.ndarray, bones: np.ndarray
) -> dict[str, np.ndarray]:
    """`lbs` arrays of the keypoints' mesh: P pairs (rest points `mix` (P, N) of the mesh vertices
    `vertex_ids`, each on one bone), then the J rest joints as vertices regressed by identity
    (their shape blend shapes regressed from the mesh's, no pose correctives)."""
    regressor = np.asarray(data["J_regressor"], dtype=np.float64)
    n_pairs, n_joints = len(mix), regressor.shape[0]
    mixed = lambda a: np.einsum("pn,n...->p...", mix, np.asarray(a, dtype=np.float64)[vertex_ids])  # noqa: E731
    regressed = lambda a: np.einsum("jv,v...->j...", regressor, np.asarray(a, dtype=np.float64))  # noqa: E731
    posedirs = np.concatenate([mixed(data["posedirs"]), np.zeros((n_joints, *data["posedirs"].shape[1:]))])
    weights = np.zeros((n_pairs + n_joints, n_joints))
    weights[np.arange(n_pairs), bones] = 1.0
    weights[n_pairs + np.arange(n_joints), np.arange(n_joints)] = 1.0
    return {
        "template": np.concatenate([mixed(data["v_template"]), regressed(data["v_template"])]),
        "shapedirs": np.concatenate([mixed(dirs), regressed(dirs)]),
        "posedirs": posedirs.reshape(-1, posedirs.shape[-1]).T,
        "regressor": np.concatenate([np.zeros((n_joints, n_pairs)), np.eye(n_joints)], 1),
        "weights": weights,
    }


def _point_table(data: dict[str, np.ndarray], num_vertices: int, num_joints: int) -> PointTable:
    """Detector keypoints on SMPL-X: joints, the standard vertex ids and the face landmarks."""
    vid = vertex_ids["smplx"]
    j = {n: PointDef.joint(i) for i, n in enumerate(SMPLX_JOINT_NAMES)}
    v = lambda name: PointDef.vertex(vid[name])  # noqa: E731
    points: dict[str, PointDef] = {
        "nose": v("nose"),
        "left_eye": v("leye"),
        "right_eye": v("reye"),
        "left_ear": v("lear"),
        "right_ear": v("rear"),
        "left_big_toe": v("LBigToe"),
        "left_small_toe": v("LSmallToe"),
        "left_heel": v("LHeel"),
        "right_big_toe": v("RBigToe"),
        "right_small_toe": v("RSmallToe"),
        "right_heel": v("RHeel"),
        "neck": j["neck"],
        "mid_hip": j["pelvis"],
    }
    for side in ("left", "right"):
        for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            points[f"{side}_{part}"] = j[f"{side}_{part}"]
        points[f"{side}_index"] = j[f"{side}_index1"]
        points[f"{side}_pinky"] = j[f"{side}_pinky1"]
        points[f"{side}_thumb"] = j[f"{side}_thumb3"]
        points[f"{side}_foot_index"] = PointDef.blend(
            (points[f"{side}_big_toe"], 0.7), (points[f"{side}_small_toe"], 0.3)
        )
        for p in HAND21_POINTS:
            finger, i = p[:-1], p[-1:]
            if p == "wrist":
                points[f"{side}_hand_{p}"] = j[f"{side}_wrist"]
            elif i == "4":
                points[f"{side}_hand_{p}"] = v(f"{side[0]}{finger}")
            else:
                points[f"{side}_hand_{p}"] = j[f"{side}_{finger}{i}"]
    faces = data["f"].astype(np.int64)

    def landmark(face: int, bary: np.ndarray) -> PointDef:
        return PointDef(vertices={int(faces[face, k]): float(bary[k]) for k in range(3)})

    if "lmk_faces_idx" in data:  # 51 static landmarks = iBUG 68 points 17..67
        for k, (fi, bc) in enumerate(zip(data["lmk_faces_idx"], data["lmk_bary_coords"])):
            points[FACE68[17 + k]] = landmark(int(fi), bc)
    if "dynamic_lmk_faces_idx" in data:  # jaw contour, iBUG 0..16, frontal yaw bin
        contour = data["dynamic_lmk_faces_idx"][_FRONTAL_CONTOUR_BIN]
        bary = data["dynamic_lmk_bary_coords"][_FRONTAL_CONTOUR_BIN]
        for k in range(17):
            points[FACE68[k]] = landmark(int(contour[k]), bary[k])
    if "lmk_faces_idx" in data:  # MediaPipe's eye and mouth corners, from the iBUG landmarks
        for name, ibug in (
            ("right_eye_outer", 36),
            ("right_eye_inner", 39),
            ("left_eye_inner", 42),
            ("left_eye_outer", 45),
            ("mouth_right", 48),
            ("mouth_left", 54),
        ):
            points[name] = points[FACE68[ibug]]
    assert set(COCO23) <= set(points)
    return PointTable(points, num_vertices, num_joints)
