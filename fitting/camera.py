"""Perspective camera in OpenCV coordinates (x right, y down, z forward), and the torso init.

The camera sits at the origin with identity rotation; the body is placed in
camera coordinates by its global orientation and translation. The body models
are y-up and face +z, so a body facing the camera is rotated 180 deg about x
(`FACING_CAMERA`); the initial orientation then turns it about the vertical
(yaw) and the optical axis (roll) as the 2D torso suggests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from body.rotations import axis_angle_to_matrix, matrix_to_axis_angle

FACING_CAMERA = (math.pi, 0.0, 0.0)


def intrinsics(
    image_size: tuple[int, int],
    focal: float | tuple[float, float] | None = None,
    center: tuple[float, float] | None = None,
    fov_deg: float = 45.0,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """((fx, fy), (cx, cy)) for an image of `image_size` (w, h).

    Without a focal length it is set from the field of view of the longer side;
    the principal point defaults to the image centre.
    """
    w, h = image_size
    if focal is None:
        f = 0.5 * max(w, h) / math.tan(math.radians(fov_deg) / 2)
        focal = (f, f)
    elif isinstance(focal, (int, float)):
        focal = (float(focal), float(focal))
    if center is None:
        center = (w / 2.0, h / 2.0)
    return (float(focal[0]), float(focal[1])), (float(center[0]), float(center[1]))


@dataclass
class TorsoView:
    """How a torso is seen, from its 2D shoulders and hips."""

    roll: torch.Tensor  # (N,) in-image angle of hips -> shoulders (0 upright, > 0 leaning to the image right)
    yaw: torch.Tensor  # (N,) turn about the body's long axis in [0, pi]: 0 faces the camera, pi faces away
    ambiguous: torch.Tensor  # (N,) bool: a side view, the yaw's sign (facing image left or right) is unknown

    def take(self, index: torch.Tensor) -> "TorsoView":
        """The views of some (or repeated) frames."""
        return TorsoView(self.roll[index], self.yaw[index], self.ambiguous[index])


def torso_view(
    xy: torch.Tensor,
    conf: torch.Tensor,
    torso: tuple[torch.Tensor, torch.Tensor],
    shoulders: tuple[torch.Tensor, torch.Tensor],
    width_ratio: float,
    side_cos: float,
) -> TorsoView:
    """Roll and yaw of the torso in each frame; xy (N, K, 2), conf (N, K); shoulders:
    (left, right) index pairs (P,), one per keypoint set, the first seen one is used.

    The shoulder line seen across the torso is cos(yaw) times its frontal length,
    `width_ratio` x the 2D torso length (shoulder width / torso length of the 3D
    body); the subject's left shoulder on the image right means the front is seen.
    |cos(yaw)| < `side_cos` marks a side view. Frames without both shoulders
    count as frontal, without hips as upright.
    """
    n = xy.shape[0]
    zeros = xy.new_zeros(n)
    if shoulders[0].numel() == 0:
        return TorsoView(zeros, zeros, torch.zeros(n, dtype=torch.bool, device=xy.device))
    sh, hp = torso
    ws, wh = (conf[:, sh] > 0).to(xy.dtype), (conf[:, hp] > 0).to(xy.dtype)
    top = (xy[:, sh] * ws[..., None]).sum(1) / ws.sum(1, keepdim=True).clamp(min=1)
    bottom = (xy[:, hp] * wh[..., None]).sum(1) / wh.sum(1, keepdim=True).clamp(min=1)
    up = top - bottom
    length = up.norm(dim=-1)
    has_torso = (ws.sum(1) > 0) & (wh.sum(1) > 0) & (length > 1.0)
    roll = torch.where(has_torso, torch.atan2(up[:, 0], -up[:, 1]), zeros)
    pairs_seen = (conf[:, shoulders[0]] > 0) & (conf[:, shoulders[1]] > 0)  # (N, P)
    first = pairs_seen.to(torch.uint8).argmax(1)
    rows = torch.arange(n, device=xy.device)
    left, right = shoulders[0][first], shoulders[1][first]
    across = xy[rows, left] - xy[rows, right]
    along = across[:, 0] * torch.cos(roll) + across[:, 1] * torch.sin(roll)
    both = pairs_seen.any(1)
    cos = torch.where(has_torso, along / (width_ratio * length).clamp(min=1e-6), torch.sign(along))
    cos = torch.where(both, cos.clamp(-1.0, 1.0), torch.ones_like(cos))
    return TorsoView(roll, torch.arccos(cos), both & has_torso & (cos.abs() < side_cos))


def initial_orientation(roll: torch.Tensor, yaw: torch.Tensor) -> torch.Tensor:
    """(N, 3) axis-angle: upright facing the camera, turned by `yaw` about the
    vertical, then by `roll` about the optical axis."""
    zeros = torch.zeros_like(roll)
    base = axis_angle_to_matrix(torch.tensor(FACING_CAMERA, dtype=roll.dtype, device=roll.device))
    turn = axis_angle_to_matrix(torch.stack([zeros, yaw, zeros], -1))
    spin = axis_angle_to_matrix(torch.stack([zeros, zeros, roll], -1))
    return matrix_to_axis_angle(spin @ turn @ base)


def project(points: torch.Tensor, focal: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """(N, K, 3) camera-space points -> (N, K, 2) pixels; focal, center (N, 2)."""
    z = points[..., 2:].clamp(min=1e-3)
    return points[..., :2] / z * focal[:, None] + center[:, None]


def init_translation(
    xy: torch.Tensor,
    weight: torch.Tensor,
    body_points: torch.Tensor,
    torso: tuple[torch.Tensor, torch.Tensor],
    focal: torch.Tensor,
    center: torch.Tensor,
) -> torch.Tensor:
    """Translation (N, 3) that puts an initial body in front of the camera over its keypoints.

    Depth from similar triangles, t_z = f * L3d / L2d (SMPLify-X), with L the
    shoulder-to-hip length of each visible body side; frames without a visible
    torso side use the spread of all visible points instead. x, y then put the
    visible points' centroid on the detections' centroid.

    xy (N, K, 2) detections and weight (N, K) (0 = unused); body_points (N, K, 3)
    the same points on the initial body in camera axes with the pelvis at the
    origin; torso: (shoulder indices (S,), hip indices (S,)) of matching pairs.
    """
    w = (weight > 0).to(xy.dtype)
    count = w.sum(1).clamp(min=1)
    c2 = (xy * w[..., None]).sum(1) / count[:, None]
    c3 = (body_points * w[..., None]).sum(1) / count[:, None]
    spread2 = (((xy - c2[:, None]) ** 2).sum(-1) * w).sum(1).div(count).sqrt()
    spread3 = (((body_points[..., :2] - c3[:, None, :2]) ** 2).sum(-1) * w).sum(1).div(count).sqrt()
    shoulders, hips = torso
    pair = w[:, shoulders] * w[:, hips]  # (N, S)
    len2 = (xy[:, shoulders] - xy[:, hips]).norm(dim=-1)
    len3 = (body_points[:, shoulders, :2] - body_points[:, hips, :2]).norm(dim=-1)
    has_torso = pair.sum(1) > 0
    torso2 = (len2 * pair).sum(1) / pair.sum(1).clamp(min=1)
    torso3 = (len3 * pair).sum(1) / pair.sum(1).clamp(min=1)
    ratio = torch.where(has_torso, torso3 / torso2.clamp(min=1.0), spread3 / spread2.clamp(min=1.0))
    f = focal.mean(1)
    tz = (f * ratio).clamp(0.5, 100.0)
    txy = (c2 - center) * tz[:, None] / f[:, None] - c3[:, :2]
    return torch.cat([txy, tz[:, None] - c3[:, 2:]], dim=1)
