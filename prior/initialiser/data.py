"""Synthetic 2D views for the initialiser: mocap poses on Anny, random cameras, detector-like corruption.

`PosedBodies.build` puts each pose on a random plausible adult shape once and
keeps its `INPUT_POINTS` in 3D about the pelvis, unrotated. `draw_views` then
makes any number of views cheaply: the body turned by its mocap root
orientation and a camera at a random azimuth (all around), elevation and roll,
with a random field of view, image aspect, size in the image and position
(people at the border are cut off), projected and corrupted like a detector:
one body keypoint set per view, Gaussian noise, dropped points, occasional
outliers and left/right swaps, random confidences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig

from body.base import BodyModel
from body.keypoint_sets import keypoint_names
from body.rotations import axis_angle_to_matrix
from body.shapes import random_shapes
from body.skeleton import mirrored_name
from prior.initialiser.model import BODY_SETS, INPUT_POINTS, features

ASPECTS = (16 / 9, 4 / 3, 1.0, 3 / 4, 9 / 16)
MIN_POINTS = 6  # views with fewer visible points are left out of the loss


MIRROR = torch.tensor([INPUT_POINTS.index(mirrored_name(n)) for n in INPUT_POINTS])
SIDED = torch.tensor([i for i, n in enumerate(INPUT_POINTS) if "left" in n])
SET_MASKS = torch.stack([torch.tensor([n in keypoint_names(s) for n in INPUT_POINTS]) for s in BODY_SETS])


@dataclass
class PosedBodies:
    """Poses on random shapes: points (N, P, 3) about the pelvis with no global rotation, the
    mocap root orientations (N, 3, 3) (y up), body poses (N, 21, 3) and shapes (N, 6)."""

    points: torch.Tensor
    root: torch.Tensor
    body_pose: torch.Tensor
    shape: torch.Tensor

    @staticmethod
    def build(
        model: BodyModel,
        body_pose: np.ndarray,
        root_orient: np.ndarray,
        rng: np.random.Generator,
        batch: int = 1024,
        shapes: np.ndarray | None = None,
    ) -> "PosedBodies":
        """Pose each row on a random adult shape (`random_shapes`), or on `shapes` (N, 6) when given."""
        n = len(body_pose)
        pose = torch.as_tensor(body_pose, dtype=torch.float32).reshape(n, 21, 3)
        shape = torch.as_tensor(random_shapes(model, n, rng) if shapes is None else shapes, dtype=torch.float32)
        sets = sorted(BODY_SETS)
        index = {s: [INPUT_POINTS.index(p) for p in keypoint_names(s)] for s in sets}
        points = torch.zeros(n, len(INPUT_POINTS), 3)
        kw = dict(device=model.device, dtype=model.dtype)
        with torch.no_grad():
            for i in range(0, n, batch):
                chunk = slice(i, i + batch)
                out = model(body_pose=pose[chunk].to(**kw), shape=shape[chunk].to(**kw), full_mesh=False)
                pelvis = out.joints[:, :1]
                for s in sets:
                    points[chunk, index[s]] = (out.keypoints(s) - pelvis).float().cpu()
        root = axis_angle_to_matrix(torch.as_tensor(root_orient, dtype=torch.float32).reshape(n, 3))
        return PosedBodies(points, root, pose, shape)

    def __len__(self) -> int:
        return len(self.points)


@dataclass
class ViewBatch:
    """Network inputs and targets of a batch of views."""

    features: torch.Tensor  # (B, NUM_FEATURES)
    rotations: torch.Tensor  # (B, 22, 3, 3) global orientation (camera frame), then the body pose
    shape: torch.Tensor  # (B, 6)
    valid: torch.Tensor  # (B,) bool: enough visible points to learn from


def _rot(axis: int, angle: torch.Tensor) -> torch.Tensor:
    aa = torch.zeros(len(angle), 3)
    aa[:, axis] = angle
    return axis_angle_to_matrix(aa)


def _uniform(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def draw_views(bodies: PosedBodies, n: int, gen: torch.Generator, cfg: DictConfig) -> ViewBatch:
    """n random views of random bodies (settings: the `views` section of configs/train_initialiser.yaml)."""
    pick = torch.randint(len(bodies), (n,), generator=gen)
    el = torch.deg2rad(_uniform(gen, n, *cfg.elevation_deg))
    roll = torch.deg2rad((torch.randn(n, generator=gen) * cfg.roll_deg).clamp(-3 * cfg.roll_deg, 3 * cfg.roll_deg))
    az = _uniform(gen, n, -math.pi, math.pi)
    orient = _rot(2, roll) @ _rot(0, el + math.pi) @ _rot(1, az) @ bodies.root[pick]
    pts = torch.einsum("nij,npj->npi", orient, bodies.points[pick])

    # Camera: field of view of the longer side, an image aspect, and the body's size in the image.
    half_long = torch.tan(torch.deg2rad(_uniform(gen, n, *cfg.fov_deg)) / 2)
    aspect = torch.tensor(ASPECTS)[torch.randint(len(ASPECTS), (n,), generator=gen)]
    half = torch.stack([half_long * aspect.clamp(max=1), half_long / aspect.clamp(min=1)], 1)  # (x, y) half-extents
    extent = (pts[..., :2].amax(1) - pts[..., :2].amin(1)).amax(1)  # 3D size across the view (m)
    lo, hi = cfg.box_fraction
    fraction = torch.exp(_uniform(gen, n, math.log(lo), math.log(hi)))
    depth = (extent / (fraction * 2 * half.amin(1))).clamp(min=1.0)
    at = (torch.rand(n, 2, generator=gen) * 2 - 1) * half * cfg.centre_spread
    cam = pts + torch.cat([at * depth[:, None], depth[:, None]], 1)[:, None]
    z = cam[..., 2]
    xy = cam[..., :2] / z.clamp(min=1e-3)[..., None]

    # Which points a detector reports: the view's keypoint set, inside the image, in front of the camera.
    which = torch.randint(len(BODY_SETS), (n,), generator=gen)
    seen = SET_MASKS[which] & (z > 0.1) & (xy.abs() <= half[:, None]).all(-1)
    seen &= torch.rand(n, len(INPUT_POINTS), generator=gen) >= _uniform(gen, n, 0, cfg.drop)[:, None]
    size = (xy[..., :2].amax(1) - xy[..., :2].amin(1)).amax(1)
    xy = xy + torch.randn(xy.shape, generator=gen) * (_uniform(gen, n, 0, cfg.noise) * size)[:, None, None]
    conf = _uniform(gen, n * len(INPUT_POINTS), 0.3, 1.0).reshape(n, -1)

    # Outliers: a few points of some views thrown anywhere near the body, with low confidence.
    outlier = (torch.rand(n, 1, generator=gen) < cfg.outlier) & (torch.rand(n, len(INPUT_POINTS), generator=gen) < 0.1)
    centre = (xy * seen[..., None]).sum(1) / seen.sum(1).clamp(min=1)[:, None]
    wild = centre[:, None] + (torch.rand(xy.shape, generator=gen) - 0.5) * 1.5 * size[:, None, None]
    xy = torch.where(outlier[..., None], wild, xy)
    conf = torch.where(outlier, conf * 0.5, conf)

    # Left/right swaps: all labels of some views, one pair of others.
    perm = torch.arange(len(INPUT_POINTS)).repeat(n, 1)
    swap_all = torch.rand(n, generator=gen) < cfg.swap_all
    perm[swap_all] = MIRROR
    one = (torch.rand(n, generator=gen) < cfg.swap_one).nonzero().flatten()
    pair = SIDED[torch.randint(len(SIDED), (len(one),), generator=gen)]
    perm[one, pair], perm[one, MIRROR[pair]] = MIRROR[pair], pair
    rows = torch.arange(n)[:, None]
    xy, seen, conf = xy[rows, perm], seen[rows, perm], conf[rows, perm]

    conf = conf * seen
    rot = torch.cat([orient[:, None], axis_angle_to_matrix(bodies.body_pose[pick])], 1)
    return ViewBatch(features(xy * seen[..., None], conf), rot, bodies.shape[pick], seen.sum(1) >= MIN_POINTS)
