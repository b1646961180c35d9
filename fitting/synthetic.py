"""Synthetic 2D views of known bodies, for measuring the fitter against ground truth.

Known poses are put on the body model with random plausible shapes, seen by a
known camera from a random direction, projected, and corrupted like a detector
would be: Gaussian pixel noise and a fraction of the points dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from body.base import BodyModel
from body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from body.shapes import random_shapes
from fitting.camera import project
from fitting.targets import FrameTargets
from keypoints import default_weights


@dataclass
class Views:
    frames: list[FrameTargets]
    joints: np.ndarray  # (N, 22, 3) ground-truth body joints, camera coordinates (m)
    params: dict[str, np.ndarray]  # ground-truth global_orient, body_pose, shape, transl (camera coordinates)


def render_views(
    model: BodyModel,
    body_pose: np.ndarray,
    root_orient: np.ndarray | None,
    rng: np.random.Generator,
    keypoint_sets: Sequence[str] = ("body25",),
    noise_px: float = 5.0,
    drop: float = 0.2,
    image_size: tuple[int, int] = (1000, 1000),
    focal: float = 1100.0,
    distance: tuple[float, float] = (3.0, 6.0),
    azimuth_deg: tuple[float, float] = (-180.0, 180.0),
    shape: np.ndarray | None = None,
    elevation_deg: tuple[float, float] = (-10.0, 30.0),
    transl: np.ndarray | None = None,
) -> Views:
    """Views of `body_pose` (N, 21, 3) (with world root orientations (N, 3), y up, or upright).

    The camera looks from a uniformly random azimuth in `azimuth_deg` (0: in
    front of the root's facing direction) and elevation in `elevation_deg`
    (default 10 deg below to 30 deg above) the pelvis, from `distance` metres;
    the body's 2D box is centred in the image with a little jitter, or the
    bodies get the translations `transl` (N, 3) in camera coordinates (m;
    people moving through one view). Points outside the image count as undetected.
    `shape` (N, S): the bodies' shapes (default: random plausible adults).
    """
    n = len(body_pose)
    kw = dict(device=model.device, dtype=model.dtype)
    root = torch.as_tensor(root_orient if root_orient is not None else np.zeros((n, 3)), **kw).reshape(n, 3)
    az = torch.as_tensor(np.radians(rng.uniform(*azimuth_deg, n)), **kw)
    el = torch.as_tensor(np.radians(rng.uniform(*elevation_deg, n)), **kw)
    zeros = torch.zeros_like(az)
    turn = axis_angle_to_matrix(torch.stack([zeros, az, zeros], 1))
    tilt = axis_angle_to_matrix(torch.stack([el + math.pi, zeros, zeros], 1))  # pitch, then y-up -> y-down
    orient = matrix_to_axis_angle(tilt @ turn @ axis_angle_to_matrix(root))
    shape = torch.as_tensor(random_shapes(model, n, rng) if shape is None else shape, **kw)
    pose = torch.as_tensor(body_pose, **kw).reshape(n, 21, 3)
    with torch.no_grad():
        out = model(global_orient=orient, body_pose=pose, shape=shape)
        joints = out.joints[:, :22]
        pts = {s: out.keypoints(s) for s in keypoint_sets}
    w, h = image_size
    depth = torch.as_tensor(rng.uniform(*distance, n), **kw)
    lo, hi = joints[..., :2].amin(1), joints[..., :2].amax(1)
    jitter = (
        torch.as_tensor(rng.uniform(-0.05, 0.05, (n, 2)), **kw) * torch.tensor([w, h], **kw) / focal * depth[:, None]
    )
    transl = (
        torch.cat([-(lo + hi) / 2 + jitter, depth[:, None]], 1) if transl is None else torch.as_tensor(transl, **kw)
    )
    fc = torch.full((n, 2), focal, **kw)
    cc = torch.tensor([w / 2, h / 2], **kw).expand(n, 2)
    targets = {}
    for name, p in pts.items():
        xy = project(p + transl[:, None], fc, cc).cpu().numpy()
        xy = xy + rng.normal(0, noise_px, xy.shape)
        seen = model.points.mask(name).numpy() & (rng.random(xy.shape[:2]) >= drop)
        seen &= (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)
        targets[name] = (
            np.concatenate([xy * seen[..., None], seen[..., None]], -1).astype(np.float32),
            default_weights(name),
        )
    frames = [
        FrameTargets({k: (v[i], wt) for k, (v, wt) in targets.items()}, (focal, focal), (w / 2, h / 2), image_size)
        for i in range(n)
    ]
    params = {"global_orient": orient, "body_pose": pose, "shape": shape, "transl": transl}
    return Views(frames, (joints + transl[:, None]).cpu().numpy(), {k: v.cpu().numpy() for k, v in params.items()})
