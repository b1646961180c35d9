"""What the writer derives from fits: every body parameter, the posed meshes, the reprojection error."""

from __future__ import annotations

import numpy as np
import torch

from body.base import BodyModel
from fitting.fitter import FitResult
from fitting.metrics import reprojection_error
from fitting.outputs.npz import BODY_PARAMS
from fitting.targets import BODY, FrameTargets, part_of


def full_params(model: BodyModel, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All body parameters as float32 axis-angle arrays, zeros for the parts that were not fitted (a new dict)."""
    out = {
        "left_hand_pose": np.zeros((15, 3), np.float32),
        "right_hand_pose": np.zeros((15, 3), np.float32),
        "jaw_pose": np.zeros(3, np.float32),
    }
    if model.num_expression:
        out["expression"] = np.zeros(model.num_expression, np.float32)
    out.update({k: v.astype(np.float32) for k, v in params.items()})
    return out


def posed_vertices(model: BodyModel, params: list[dict[str, np.ndarray]]) -> np.ndarray:
    """(N, V, 3) full meshes in camera coordinates for fitted parameters."""
    keys = [k for k in BODY_PARAMS if k in params[0]]
    with torch.no_grad():
        kw = {
            k: torch.as_tensor(np.stack([p[k] for p in params]), device=model.device, dtype=model.dtype) for k in keys
        }
        return model(**kw).vertices.cpu().numpy()


def frame_reprojection(result: FitResult, frame: FrameTargets) -> tuple[float, float]:
    """Mean reprojection error over the body keypoints used: (px, fraction of the person's height);
    over the confident detections, or over all used ones when none is confident."""
    used = [n for n in frame.points if n in result.projected and part_of(n) == BODY]
    if not used:
        return float("nan"), float("nan")
    projected = np.concatenate([result.projected[n] for n in used])
    points = np.concatenate([frame.points[n][0] for n in used])
    weights = np.concatenate([frame.points[n][1] for n in used])
    px, rel = reprojection_error(projected, points, weights)
    if not np.isfinite(px):
        px, rel = reprojection_error(projected, points, weights, min_confidence=1e-6)
    return px, rel
