"""Fit quality: 2D reprojection error, and 3D joint errors against ground truth."""

from __future__ import annotations

import numpy as np


def reprojection_error(
    projected: np.ndarray, points: np.ndarray, weights: np.ndarray, min_confidence: float = 0.5
) -> tuple[float, float]:
    """(mean px distance, mean / person height) over confident detections (weight > 0).

    projected (K, 2) model keypoints in px (NaN where the model has none); points (K, 3) detections x, y, conf;
    weights (K,). Detectors also guess occluded and off-image points at low confidence (MediaPipe
    places the legs of a half-length portrait hundreds of pixels below the frame), so only points
    with confidence >= `min_confidence` count. The person's height is their vertical extent.
    """
    used = (points[:, 2] >= min_confidence) & (weights > 0) & np.isfinite(points).all(1) & np.isfinite(projected).all(1)
    if not used.any():
        return float("nan"), float("nan")
    err = float(np.linalg.norm(projected[used] - points[used, :2], axis=1).mean())
    height = float(np.ptp(points[used, 1]))
    return err, err / max(height, 1.0)


def mpjpe(pred: np.ndarray, gt: np.ndarray, root: int = 0) -> np.ndarray:
    """Mean per-joint position error (N,) after moving both roots to the origin; (N, J, 3) inputs."""
    p = pred - pred[:, root : root + 1]
    g = gt - gt[:, root : root + 1]
    return np.linalg.norm(p - g, axis=-1).mean(1)


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean per-joint error (N,) after the best similarity transform of pred onto gt (Procrustes)."""
    out = np.empty(len(pred))
    for i, (p, g) in enumerate(zip(pred, gt)):
        pc, gc = p - p.mean(0), g - g.mean(0)
        u, s, vt = np.linalg.svd(pc.T @ gc)
        d = np.sign(np.linalg.det(u @ vt))
        s[-1] *= d
        u[:, -1] *= d
        rot = u @ vt
        scale = s.sum() / (pc**2).sum()
        out[i] = np.linalg.norm(scale * pc @ rot - gc, axis=-1).mean()
    return out
