"""What a frame is fitted to: its 2D keypoints and camera, their validation, and their layout.

`people_targets` turns one frame's detections (`keypoints.Keypoints`) into
`FrameTargets` per chosen person, or a reason to skip the frame or a person;
`Layout` concatenates the keypoint sets of a batch and says which points are body,
hand or face and which form the torso.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from omegaconf import DictConfig

import keypoints
from body.keypoint_sets import keypoint_names
from fitting.camera import intrinsics

HAND_SETS = ("left_hand21", "right_hand21")
FACE_SETS = ("face68",)
BODY, HAND, FACE = 0, 1, 2


@dataclass
class FrameTargets:
    """One frame's 2D keypoints (as `keypoints.targets` gives them) and camera."""

    points: dict[str, tuple[np.ndarray, np.ndarray]]  # set -> ((K, 3) x, y, confidence; (K,) weights)
    focal: tuple[float, float]
    center: tuple[float, float]
    image_size: tuple[int, int]  # (w, h)
    dropped: int = 0  # detected points of the frame (any person) ignored for lying far outside the image


def part_of(set_name: str) -> int:
    """BODY, HAND or FACE: which part of the body a keypoint set belongs to."""
    return HAND if set_name in HAND_SETS else FACE if set_name in FACE_SETS else BODY


@dataclass(frozen=True)
class PersonTargets:
    """One chosen person of a frame: their targets, or why they cannot be fitted."""

    person_id: int  # the person's index in the frame's detections (OpenPose: in its `people`)
    targets: FrameTargets | None
    reason: str | None = None  # set when targets is None


def check_targets(
    points: dict[str, tuple[np.ndarray, np.ndarray]], min_points: int, min_height: float = 0
) -> str | None:
    """Why a person's screened points cannot be fitted (None when they can): none, all zero, too
    few, or too small (their body points span less than `min_height` px vertically)."""
    body = [pts for name, (pts, _) in points.items() if part_of(name) == BODY]
    if not body:
        return "no body keypoints"
    pts = np.concatenate(body)
    if not np.any(pts):
        return "keypoints are all zero"
    seen = pts[pts[:, 2] > 0]
    if len(seen) < min_points:
        return f"only {len(seen)} usable body keypoints (need {min_points})"
    height = float(np.ptp(seen[:, 1]))
    if height < min_height:
        return f"too small: {height:.0f} px tall (need {min_height:g})"
    return None


def screened(
    kp: keypoints.Keypoints, image_size: tuple[int, int], margin: float
) -> tuple[keypoints.Keypoints, int, int]:
    """The detections with confidences clipped to [0, 1] (non-finite: 0) and every point that is
    not finite or lies further than `margin` x the image size outside the image removed; with the
    number of detected points (confidence > 0) removed for lying outside, and of non-finite points."""
    w, h = image_size
    outside = nonfinite = 0
    parts = {}
    for name, pts in kp.parts().items():
        pts = pts.astype(np.float32, copy=True)
        finite = np.isfinite(pts).all(-1)
        conf = np.where(finite, pts[..., 2], 0.0).clip(0.0, 1.0)
        with np.errstate(invalid="ignore"):
            x, y = pts[..., 0], pts[..., 1]
            inside = (x >= -margin * w) & (x <= (1 + margin) * w) & (y >= -margin * h) & (y <= (1 + margin) * h)
        keep = finite & inside
        nonfinite += int((~finite).sum())
        outside += int((finite & ~inside & (conf > 0)).sum())
        pts[..., 2] = np.where(keep, conf, 0.0)
        pts[..., :2] = np.where(keep[..., None], pts[..., :2], 0.0)
        parts[name] = pts
    return replace(kp, **parts), outside, nonfinite


def people_targets(
    kp: keypoints.Keypoints, image_size: tuple[int, int] | None, cfg: DictConfig, by: str | None = None
) -> tuple[list[PersonTargets], str | None]:
    """The people chosen by `by` (default `cfg.keypoints.person`: all, largest or confident), each
    with targets or why they cannot be fitted; or ([], why the frame is skipped). Detections are
    screened first (`screened`, margin `cfg.keypoints.outside_margin`)."""
    if kp.num_people == 0:
        return [], "no person detected"
    size = image_size or kp.image_size or (tuple(cfg.camera.image_size) if cfg.camera.image_size else None)
    if size is None:
        raise keypoints.KeypointsError(
            f"{kp.source}: image size unknown; pass the images (--images DIR) or camera.image_size=[w,h]"
        )
    size = (int(size[0]), int(size[1]))
    kp, dropped, nonfinite = screened(kp, size, cfg.keypoints.outside_margin)
    focal = cfg.camera.focal
    if focal is not None and not isinstance(focal, (int, float)):
        focal = tuple(focal)
    center = tuple(cfg.camera.center) if cfg.camera.center is not None else None
    f, c = intrinsics(size, focal, center, cfg.camera.fov_deg)
    ignored = ", ".join(f"{n} {what}" for n, what in ((nonfinite, "NaN/inf"), (dropped, "far outside the image")) if n)
    ignored = f" ({ignored} points ignored)" if ignored else ""
    people = []
    for i in kp.chosen(by or cfg.keypoints.person):
        points = keypoints.targets(kp.select(i))
        reason = check_targets(points, cfg.keypoints.min_points, cfg.keypoints.min_height)
        if reason is None:
            people.append(PersonTargets(i, FrameTargets(points, f, c, size, dropped)))
        else:
            people.append(PersonTargets(i, None, reason + ignored))
    return people, None


@dataclass
class Layout:
    """The keypoint sets of a batch, concatenated: names, part (body/hand/face) per point, torso pairs."""

    sets: list[str]
    names: list[str]
    part: torch.Tensor  # (K,)
    torso: tuple[torch.Tensor, torch.Tensor]  # shoulder and hip indices of matching sides
    shoulders: tuple[torch.Tensor, torch.Tensor]  # left and right shoulder indices, one pair per body set

    def slices(self) -> dict[str, slice]:
        """Where each set's points lie along K."""
        ends = np.cumsum([len(keypoint_names(s)) for s in self.sets])
        return {s: slice(int(end) - len(keypoint_names(s)), int(end)) for s, end in zip(self.sets, ends)}

    @staticmethod
    def sets_of(frames: list[FrameTargets], supported: set[str]) -> list[str]:
        """The keypoint sets that any of `frames` has and the body model supports, sorted."""
        return sorted({s for f in frames for s in f.points if s in supported})

    @staticmethod
    def of(frames: list[FrameTargets], supported: set[str], device: torch.device) -> "Layout":
        """The layout of `sets_of(frames, supported)`."""
        return Layout.build(Layout.sets_of(frames, supported), device)

    @staticmethod
    def build(sets: list[str], device: torch.device) -> "Layout":
        names, part, shoulders, hips, lefts, rights = [], [], [], [], [], []
        for s in sets:
            n = list(keypoint_names(s))
            kind = part_of(s)
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
