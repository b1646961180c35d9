"""SMPLify-X-style staged fitting, batched: many frames (or windows of a video) in one optimisation.

Rows of a batch are independent problems (`fitting.optimize.minimize`). A row
holds T frames: T = 1 for images; a video window has T > 1, one shape for all
its frames and temporal smoothness terms. Variables per frame: the pose-space
variable (VPoser latent, or axis-angles for the baselines), global orientation
and translation in camera coordinates, hand poses, jaw and expression where
the model and the keypoints have them; per row: shape.

Stages: a camera stage (orientation and translation on the torso points, body
pose held at the prior's mean, depth kept near the similar-triangles estimate),
then the weighted stages of `cfg.stages` over all variables.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch
from omegaconf import DictConfig

from body.keypoint_sets import keypoint_names
from body.rotations import axis_angle_to_matrix
from body.skeleton import BODY_JOINT_NAMES
from fitting import losses
from fitting.camera import TorsoView, init_translation, initial_orientation, project, torso_view
from fitting.optimize import LbfgsOptions, minimize
from fitting.priors import PoseSpace

HAND_SETS = ("left_hand21", "right_hand21")
FACE_SETS = ("face68",)
BODY, HAND, FACE = 0, 1, 2
NUM_SKELETON_JOINTS = len(BODY_JOINT_NAMES)  # pelvis + 21, the joints the temporal term smooths


@dataclass
class FrameTargets:
    """One frame's 2D keypoints (as `keypoints.targets` gives them) and camera."""

    points: dict[str, tuple[np.ndarray, np.ndarray]]  # set -> ((K, 3) x, y, confidence; (K,) weights)
    focal: tuple[float, float]
    center: tuple[float, float]
    image_size: tuple[int, int]  # (w, h)


@dataclass
class FitResult:
    """Fitted parameters of one frame (axis-angle; `latent` too with VPoser) and diagnostics."""

    params: dict[str, np.ndarray]
    stage_losses: np.ndarray  # this frame's loss after the camera stage, each stage (and a video window's refinement)
    iterations: np.ndarray  # L-BFGS iterations of its row in the same stages
    terms: dict[str, float]  # final loss terms of this frame
    start_yaw: float  # degrees the start was turned from facing the camera (side views: the better of +-)
    projected: dict[str, np.ndarray] = field(default_factory=dict)  # set -> (K, 2) model keypoints in px

    def is_finite(self) -> bool:
        """False for a diverged fit: a non-finite loss or parameter."""
        return bool(np.isfinite(self.stage_losses).all() and all(np.isfinite(v).all() for v in self.params.values()))


def check_targets(points: dict[str, tuple[np.ndarray, np.ndarray]], min_points: int) -> str | None:
    """Why a frame cannot be fitted (None when it can): empty, all-zero, NaN or too few points."""
    body = [pts for name, (pts, _) in points.items() if name not in HAND_SETS + FACE_SETS]
    if not body:
        return "no body keypoints"
    pts = np.concatenate(body)
    finite = np.isfinite(pts).all(1)
    if not finite.any():
        return "keypoints are all NaN/inf"
    if not np.any(pts[finite]):
        return "keypoints are all zero"
    usable = int((finite & (pts[:, 2] > 0)).sum())
    if usable < min_points:
        bad = int((~finite).sum())
        extra = f", {bad} NaN/inf" if bad else ""
        return f"only {usable} usable body keypoints (need {min_points}{extra})"
    return None


@dataclass
class Problem:
    """Targets of B rows x T frames, as tensors; `layout` lists the keypoint sets concatenated along K."""

    xy: torch.Tensor  # (B, T, K, 2)
    conf: torch.Tensor  # (B, T, K) detection confidence (0: missing, or not on this model)
    weight: torch.Tensor  # (B, T, K) confidence x per-joint weight
    scale: torch.Tensor  # (B, T) px -> reference units
    focal: torch.Tensor  # (B, T, 2)
    center: torch.Tensor  # (B, T, 2)
    link: torch.Tensor  # (B, T-1) temporal link weights between consecutive frames
    frozen: torch.Tensor  # (B, T) bool: frames held at their initial values (video overlap)
    layout: "Layout"

    def take(self, rows: torch.Tensor) -> "Problem":
        return replace(self, **{k: getattr(self, k)[rows] for k in
                                ("xy", "conf", "weight", "scale", "focal", "center", "link", "frozen")})


@dataclass
class Layout:
    """The keypoint sets of a batch, concatenated: names, part (body/hand/face) per point, torso pairs."""

    sets: list[str]
    names: list[str]
    part: torch.Tensor  # (K,)
    torso: tuple[torch.Tensor, torch.Tensor]  # shoulder and hip indices of matching sides
    shoulders: tuple[torch.Tensor, torch.Tensor]  # left and right shoulder indices, one pair per body set

    @staticmethod
    def build(sets: list[str], device: torch.device) -> "Layout":
        names, part, shoulders, hips, lefts, rights = [], [], [], [], [], []
        for s in sets:
            n = list(keypoint_names(s))
            kind = HAND if s in HAND_SETS else FACE if s in FACE_SETS else BODY
            if kind == BODY:
                for side in ("left", "right"):
                    if f"{side}_shoulder" in n and f"{side}_hip" in n:
                        shoulders.append(len(names) + n.index(f"{side}_shoulder"))
                        hips.append(len(names) + n.index(f"{side}_hip"))
                if "left_shoulder" in n and "right_shoulder" in n:
                    lefts.append(len(names) + n.index("left_shoulder"))
                    rights.append(len(names) + n.index("right_shoulder"))
            names += n
            part += [kind] * len(n)
        as_t = lambda v: torch.tensor(v, dtype=torch.long, device=device)  # noqa: E731
        return Layout(sets, names, as_t(part), (as_t(shoulders), as_t(hips)), (as_t(lefts), as_t(rights)))


class Fitter:
    """Fits a body model to 2D keypoints. `fit_frames` for independent images; `fit_rows` underlies video."""

    def __init__(self, model: torch.nn.Module, space: PoseSpace, cfg: DictConfig) -> None:
        self.model = model
        self.space = space
        self.cfg = cfg
        self.device = model.device
        self.dtype = model.dtype
        self.supported = set(model.points.supported_sets())
        self.num_stages = len(cfg.stages.pose_prior)
        self.evaluations = 0  # batched objective calls so far (for benchmarks)
        with torch.no_grad():  # shoulder width / torso length of the average body, to read yaw off 2D shoulders
            k = model(shape=torch.zeros(1, model.num_shape, device=self.device, dtype=self.dtype)).keypoints("coco17")[0]
        at = {n: k[i] for i, n in enumerate(keypoint_names("coco17"))}
        shoulders = (at["left_shoulder"] + at["right_shoulder"]) / 2
        hips = (at["left_hip"] + at["right_hip"]) / 2
        self.width_ratio = float((at["left_shoulder"] - at["right_shoulder"]).norm() / (shoulders - hips).norm())

    # ----- building problems -------------------------------------------------
    def layout_for(self, frames: list[FrameTargets]) -> Layout:
        sets = sorted({s for f in frames for s in f.points if s in self.supported})
        return Layout.build(sets, self.device)

    def problem(self, rows: list[list[FrameTargets | None]], layout: Layout,
                frame_index: list[list[int]] | None = None) -> Problem:
        """Tensors for B rows of T frames (None pads a short row: all weights 0, frozen)."""
        b, t, k = len(rows), max(len(r) for r in rows), len(layout.names)
        xy = np.zeros((b, t, k, 2), np.float32)
        conf = np.zeros((b, t, k), np.float32)
        weight = np.zeros((b, t, k), np.float32)
        focal = np.ones((b, t, 2), np.float32)
        center = np.zeros((b, t, 2), np.float32)
        frozen = np.ones((b, t), bool)
        offsets = np.cumsum([0] + [len(keypoint_names(s)) for s in layout.sets])
        for i, row in enumerate(rows):
            for j, frame in enumerate(row):
                if frame is None:
                    continue
                frozen[i, j] = False
                focal[i, j], center[i, j] = frame.focal, frame.center
                for si, s in enumerate(layout.sets):
                    if s not in frame.points:
                        continue
                    pts, w = frame.points[s]
                    mask = self.model.points.mask(s).numpy() & np.isfinite(pts).all(1)
                    sl = slice(offsets[si], offsets[si + 1])
                    xy[i, j, sl] = np.where(mask[:, None], pts[:, :2], 0)
                    c = np.where(mask, np.clip(pts[:, 2], 0, 1), 0)
                    conf[i, j, sl] = c
                    weight[i, j, sl] = c * w
        is_body = (layout.part == BODY).cpu().numpy()
        scale = np.ones((b, t), np.float32)
        for i in range(b):
            for j in range(t):
                seen = (conf[i, j] > 0) & is_body
                if seen.sum() >= 2:
                    p = xy[i, j, seen]
                    diag = float(np.linalg.norm(p.max(0) - p.min(0)))
                    scale[i, j] = self.cfg.data.reference_size / max(diag, 1.0)
        link = np.zeros((b, max(t - 1, 0)), np.float32)
        if frame_index is not None:
            for i, idx in enumerate(frame_index):
                gaps = np.diff(np.asarray(idx, np.float64))
                ok = (gaps > 0) & (gaps <= self.cfg.video.max_gap)
                link[i, : len(gaps)] = np.where(ok, 1.0 / np.maximum(gaps, 1) ** 2, 0)
        as_t = lambda a: torch.as_tensor(a, device=self.device)  # noqa: E731
        return Problem(as_t(xy).to(self.dtype), as_t(conf).to(self.dtype), as_t(weight).to(self.dtype),
                       as_t(scale).to(self.dtype), as_t(focal).to(self.dtype), as_t(center).to(self.dtype),
                       as_t(link).to(self.dtype), as_t(frozen), layout)

    # ----- variables ---------------------------------------------------------
    def initial(self, problem: Problem, yaw: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Start values: the prior's mean pose, average shape, oriented as the 2D torso
        suggests (`yaw` (B,) overrides the turn), translation from the torso's size and place."""
        b, t = problem.scale.shape
        n = b * t
        kw = dict(device=self.device, dtype=self.dtype)
        v = {
            "pose": self.space.initial(n, self.device, self.dtype).reshape(b, t, -1),
            "shape": torch.zeros(b, self.model.num_shape, **kw),
        }
        if self._uses(problem, HAND):
            v["left_hand_pose"] = torch.zeros(b, t, 45, **kw)
            v["right_hand_pose"] = torch.zeros(b, t, 45, **kw)
        if self._uses(problem, FACE):
            v["jaw_pose"] = torch.zeros(b, t, 3, **kw)
            v["expression"] = torch.zeros(b, t, self.model.num_expression, **kw)
        view = self.torso_view(problem)
        turn = view.yaw if yaw is None else yaw.repeat_interleave(t)
        v["global_orient"] = initial_orientation(view.roll, turn).reshape(b, t, 3)
        v["transl"] = torch.zeros(b, t, 3, **kw)
        flat = lambda x: x.reshape(n, *x.shape[2:])  # noqa: E731
        with torch.no_grad():
            pts = self._keypoints(self._flat(v), problem.layout)
        body = (problem.layout.part == BODY).to(self.dtype)
        transl = init_translation(flat(problem.xy), flat(problem.conf) * body, pts, problem.layout.torso,
                                  flat(problem.focal), flat(problem.center))
        v["transl"] = transl.reshape(b, t, 3)
        return v

    def torso_view(self, problem: Problem) -> TorsoView:
        """Roll, yaw and side-view flag of every frame (B*T), from its 2D torso."""
        b, t = problem.scale.shape
        body = (problem.layout.part == BODY).to(self.dtype)
        return torso_view(problem.xy.reshape(b * t, -1, 2), (problem.conf * body).reshape(b * t, -1),
                          problem.layout.torso, problem.layout.shoulders, self.width_ratio,
                          self.cfg.init.side_view_cos)

    def _uses(self, problem: Problem, part: int) -> bool:
        has = {HAND: getattr(self.model, "has_hands", False), FACE: getattr(self.model, "has_face", False)}[part]
        return bool(has) and bool((problem.conf[..., problem.layout.part == part] > 0).any())

    # ----- model evaluation --------------------------------------------------
    @staticmethod
    def _flat(v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """(B, T, ...) variables -> (B*T, ...) with the row's shape repeated per frame."""
        b, t = v["transl"].shape[:2]
        out = {k: x.reshape(b * t, *x.shape[2:]) for k, x in v.items() if k != "shape"}
        out["shape"] = v["shape"].repeat_interleave(t, 0)
        return out

    def _body(self, f: dict[str, torch.Tensor], full_mesh: bool = True):
        """Pose the model; `full_mesh=False` skins only the keypoint vertices (the optimisation loop)."""
        kwargs = dict(global_orient=f["global_orient"], body_pose=self.space.body_pose(f["pose"]),
                      transl=f["transl"], shape=f["shape"])
        for k in ("left_hand_pose", "right_hand_pose"):
            if k in f:
                kwargs[k] = f[k].reshape(-1, 15, 3)
        for k in ("jaw_pose", "expression"):
            if k in f:
                kwargs[k] = f[k]
        return self.model(**kwargs, full_mesh=full_mesh), kwargs["body_pose"]

    def _keypoints(self, f: dict[str, torch.Tensor], layout: Layout):
        out, _ = self._body(f, full_mesh=False)
        return torch.cat([out.keypoints(s) for s in layout.sets], 1)

    # ----- objective ---------------------------------------------------------
    def terms(self, v: dict[str, torch.Tensor], problem: Problem, stage: int | None) -> dict[str, torch.Tensor]:
        """Loss terms (B, T) at `stage` (None: the camera stage)."""
        b, t = problem.scale.shape
        n = b * t
        f = self._flat(v)
        out, body_pose = self._body(f, full_mesh=False)
        pts = torch.cat([out.keypoints(s) for s in problem.layout.sets], 1)
        proj = project(pts, problem.focal.reshape(n, 2), problem.center.reshape(n, 2))
        xy, scale = problem.xy.reshape(n, -1, 2), problem.scale.reshape(n)
        cfg, st = self.cfg, self.cfg.stages
        per_frame = lambda x: x.reshape(b, t)  # noqa: E731
        terms: dict[str, torch.Tensor] = {}
        if stage is None:
            sh, hp = problem.layout.torso
            torso = torch.zeros(len(problem.layout.names), dtype=self.dtype, device=self.device)
            torso[torch.cat([sh, hp])] = 1.0
            w = problem.conf.reshape(n, -1) * torso
            terms["data"] = per_frame(losses.keypoint_data(proj, xy, w, scale, cfg.data.rho)) * cfg.data.weight ** 2
            tz0 = v["_transl_init"][..., 2]
            terms["depth"] = (v["transl"][..., 2] - tz0) ** 2 * cfg.init.depth_weight ** 2
        else:
            part_w = torch.tensor([1.0, st.hand_data[stage], st.face_data[stage]], dtype=self.dtype, device=self.device)
            w = problem.weight.reshape(n, -1) * part_w[problem.layout.part]
            terms["data"] = per_frame(losses.keypoint_data(proj, xy, w, scale, cfg.data.rho)) * cfg.data.weight ** 2
            pw = st.pose_prior[stage]
            terms["pose_prior"] = per_frame(self.space.penalty(f["pose"])) * pw ** 2
            terms["bending"] = per_frame(losses.bending(body_pose)) * (st.bending_ratio * pw) ** 2
            terms["shape_prior"] = losses.squared_norm(v["shape"])[:, None].expand(b, t) * st.shape_prior[stage] ** 2
            if "left_hand_pose" in v:
                hands = losses.squared_norm(f["left_hand_pose"]) + losses.squared_norm(f["right_hand_pose"])
                terms["hand_prior"] = per_frame(hands) * st.hand_prior[stage] ** 2
            if "jaw_pose" in v:
                terms["jaw_prior"] = per_frame(losses.squared_norm(f["jaw_pose"])) * st.jaw_prior[stage] ** 2
                terms["expression_prior"] = per_frame(losses.squared_norm(f["expression"])) * st.expression_prior[stage] ** 2
        if t > 1:
            vc = cfg.video
            rot = torch.cat([axis_angle_to_matrix(f["global_orient"])[:, None], axis_angle_to_matrix(body_pose)], 1)
            joints = out.joints[:, :NUM_SKELETON_JOINTS]
            pad = lambda x: torch.cat([x.new_zeros(b, 1), x], 1)  # noqa: E731  pair (t-1, t) -> frame t
            terms["smooth_pose"] = pad(losses.smoothness(rot.reshape(b, t, -1), problem.link)) * vc.pose_smooth ** 2
            terms["smooth_transl"] = pad(losses.smoothness(v["transl"], problem.link)) * vc.transl_smooth ** 2
            terms["smooth_joints"] = pad(losses.smoothness(joints.reshape(b, t, -1), problem.link)) * vc.joint_smooth ** 2
        return terms

    # ----- optimisation ------------------------------------------------------
    def fit_rows(self, problem: Problem, v: dict[str, torch.Tensor], fixed_shape: bool = False,
                 stages: Sequence[int | None] | None = None) -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray]:
        """Run `stages` (default: the camera stage, None, then every stage) from `v` (B, T, ...).

        Frames with `problem.frozen` keep their values in `v`. Returns the final
        variables, per-frame losses (B, T, len(stages)) and iterations (B, len(stages)).
        """
        stages = [None, *range(self.num_stages)] if stages is None else list(stages)
        v = dict(v)
        v["_transl_init"] = v["transl"].detach().clone()
        fixed = {k: x.detach().clone() for k, x in v.items()}
        opt = self.cfg.optimizer
        b, t = problem.scale.shape
        losses_out = np.zeros((b, t, len(stages)), np.float32)
        iters = np.zeros((b, len(stages)), np.int64)
        per_frame_vars = [k for k in v if k not in ("shape", "_transl_init")]
        for si, stage in enumerate(stages):
            if stage is None:
                free = ["global_orient", "transl"]
            else:
                free = per_frame_vars + ([] if fixed_shape else ["shape"])
            packer = _Packer(v, free)

            def objective(x: torch.Tensor, rows: torch.Tensor, stage=stage, packer=packer) -> torch.Tensor:
                sub = {k: val[rows] for k, val in v.items()}
                sub.update(packer.unpack(x))
                frozen = problem.frozen[rows]
                for k in free:
                    if k != "shape":
                        sub[k] = torch.where(_expand(frozen, sub[k]), fixed[k][rows], sub[k])
                terms = self.terms(sub, problem.take(rows), stage)
                return sum(terms.values()).sum(1)

            options = LbfgsOptions(max_iter=opt.camera_iter if stage is None else opt.max_iter,
                                   history_size=opt.history_size, rel_tolerance=opt.rel_tolerance,
                                   max_line_search=opt.max_line_search)
            result = minimize(objective, packer.pack(v), options)
            self.evaluations += result.evaluations
            v.update(packer.unpack(result.x))
            for k in free:
                if k != "shape":
                    v[k] = torch.where(_expand(problem.frozen, v[k]), fixed[k], v[k])
            with torch.no_grad():
                terms = self.terms(v, problem, stage)
            losses_out[:, :, si] = sum(terms.values()).cpu().numpy()
            iters[:, si] = result.iterations.cpu().numpy()
        v.pop("_transl_init")
        return {k: x.detach() for k, x in v.items()}, losses_out, iters

    def fit_frames(self, frames: list[FrameTargets], shape: torch.Tensor | None = None,
                   start: dict[str, torch.Tensor] | None = None) -> list[FitResult]:
        """Fit independent frames in one batch.

        shape (S,): hold every frame at this shape. start: per-frame variables
        (as `variables`) to start every frame from instead of the torso init.
        Without `start`, side views start from both of their possible turns (facing
        image left or right) and the better fit is kept (SMPLify-X's turned-around retry).
        """
        if not frames:
            return []
        n = len(frames)
        layout = self.layout_for(frames)
        problem = self.problem([[f] for f in frames], layout)
        view = self.torso_view(problem)
        side = view.ambiguous.nonzero().flatten() if start is None else torch.zeros(0, dtype=torch.long)
        side = side.to(self.device)
        problem = problem.take(torch.cat([torch.arange(n, device=self.device), side]))
        yaw = torch.cat([view.yaw, -view.yaw[side]])
        v = self.initial(problem, yaw)
        if shape is not None:
            v["shape"] = shape.to(v["shape"]).expand_as(v["shape"]).clone()
        for k, x in (start or {}).items():
            if k in v and k != "shape":
                v[k] = x.to(v[k]).reshape(1, 1, -1).expand_as(v[k]).clone()
        v, frame_losses, iters = self.fit_rows(problem, v, fixed_shape=shape is not None)
        final = frame_losses[:, 0, -1]
        choice = np.arange(n)
        for j, i in enumerate(side.tolist()):
            if final[n + j] < final[i]:
                choice[i] = n + j
        pick = torch.as_tensor(choice, device=self.device)
        start_yaw = np.degrees(yaw.cpu().numpy())[choice]
        return self.results({k: x[pick] for k, x in v.items()}, problem.take(pick), frame_losses[choice],
                            iters[choice], start_yaw=start_yaw)

    def variables(self, params: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """One frame's optimisation variables from its saved parameters (inverse of `results`)."""
        kw = dict(device=self.device, dtype=self.dtype)
        pose = params["latent"] if self.space.is_latent else params["body_pose"]
        out = {"pose": pose, "global_orient": params["global_orient"], "transl": params["transl"],
               "shape": params["shape"]}
        out.update({k: params[k] for k in ("left_hand_pose", "right_hand_pose", "jaw_pose", "expression") if k in params})
        return {k: torch.as_tensor(np.asarray(x), **kw).reshape(-1) for k, x in out.items()}

    def results(self, v: dict[str, torch.Tensor], problem: Problem, frame_losses: np.ndarray, iters: np.ndarray,
                start_yaw: np.ndarray | None = None) -> list[FitResult]:
        """Per-frame results (axis-angle parameters, final terms, projections) of fitted rows."""
        b, t = problem.scale.shape
        with torch.no_grad():
            terms = self.terms(v, problem, self.num_stages - 1)
            f = self._flat(v)
            out, body_pose = self._body(f, full_mesh=False)
            proj = {s: project(out.keypoints(s), problem.focal.reshape(-1, 2), problem.center.reshape(-1, 2))
                    .masked_fill(~self.model.points.mask(s).to(self.device)[None, :, None], float("nan"))
                    for s in problem.layout.sets}
        params = {
            "global_orient": f["global_orient"], "body_pose": body_pose, "transl": f["transl"], "shape": f["shape"],
        }
        for k in ("left_hand_pose", "right_hand_pose", "jaw_pose", "expression"):
            if k in f:
                params[k] = f[k].reshape(b * t, 15, 3) if "hand" in k else f[k]
        if self.space.is_latent:
            params["latent"] = f["pose"]
        params = {k: x.cpu().numpy() for k, x in params.items()}
        terms = {k: x.reshape(-1).cpu().numpy() for k, x in terms.items()}
        proj = {s: p.cpu().numpy() for s, p in proj.items()}
        results = []
        for i in range(b * t):
            r, j = divmod(i, t)
            if bool(problem.frozen[r, j]):
                continue
            results.append(FitResult(
                params={k: x[i] for k, x in params.items()},
                stage_losses=frame_losses[r, j], iterations=iters[r],
                terms={k: float(x[i]) for k, x in terms.items()},
                start_yaw=float(start_yaw[r]) if start_yaw is not None else float("nan"),
                projected={s: p[i] for s, p in proj.items()}))
        return results


def _expand(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.reshape(*mask.shape, *([1] * (like.dim() - mask.dim()))).expand_as(like)


class _Packer:
    """Named (B, ...) tensors <-> one flat (B, D) vector per row."""

    def __init__(self, template: dict[str, torch.Tensor], names: list[str]) -> None:
        self.names = names
        self.shapes = [template[n].shape[1:] for n in names]
        self.sizes = [int(np.prod(s)) for s in self.shapes]

    def pack(self, v: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([v[n].reshape(v[n].shape[0], -1) for n in self.names], 1)

    def unpack(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(x, self.sizes, dim=1)
        return {n: p.reshape(x.shape[0], *s) for n, p, s in zip(self.names, parts, self.shapes)}
