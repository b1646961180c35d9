"""Joint-set maps: 2D detections to the body models' named keypoint sets.

`targets` gives the fitter, per body-model keypoint set, the detected points
and per-joint default weights; `convert` re-expresses a detection in another
2D set by point name (for writing OpenPose or COCO files).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from body.keypoint_sets import COCO23, FACE68, KEYPOINT_SETS, LEFT_HAND21, RIGHT_HAND21

from .types import ORIGIN_BODY_SETS, Keypoints

# COCO-WholeBody order: body 17, feet 6, face 68, left hand 21, right hand 21.
WHOLEBODY133: tuple[str, ...] = COCO23 + FACE68 + LEFT_HAND21 + RIGHT_HAND21
WHOLEBODY_SLICES: dict[str, slice] = {
    "coco23": slice(0, 23),
    "face": slice(23, 91),
    "left_hand": slice(91, 112),
    "right_hand": slice(112, 133),
}

# A point missing from the source set taken from a similar one...
_ALIASES = {
    "left_big_toe": "left_foot_index",
    "right_big_toe": "right_foot_index",
    "left_foot_index": "left_big_toe",
    "right_foot_index": "right_big_toe",
}
# ...or from the midpoint of two (confidence: the lower of the two).
_MIDPOINTS = {
    "neck": ("left_shoulder", "right_shoulder"),
    "mid_hip": ("left_hip", "right_hip"),
}

# Per-joint default weights (1 where not listed). Detector hips sit higher and
# wider than the body models' hip joints: SMPLify-X ignores OpenPose's neck and
# hips, COCO and MediaPipe hips are kept at half weight. MediaPipe's eye
# corners, mouth and finger points are noisier and repeated by face and hands.
_LOW_WEIGHTS: dict[str, dict[str, float]] = {
    "body25": {"neck": 0.0, "mid_hip": 0.0, "left_hip": 0.0, "right_hip": 0.0},
    "coco17": {"left_hip": 0.5, "right_hip": 0.5},
    "coco23": {"left_hip": 0.5, "right_hip": 0.5},
    "mediapipe33": {
        "left_hip": 0.5,
        "right_hip": 0.5,
        **{f"{s}_{p}": 0.5 for s in ("left", "right") for p in ("eye_inner", "eye_outer", "pinky", "index", "thumb")},
        "mouth_left": 0.5,
        "mouth_right": 0.5,
    },
    # The jaw line (iBUG 0-16) is off by default, as in SMPLify-X.
    "face68": {f"face{i:02d}": 0.0 for i in range(17)},
}


def set_names(body_set: str) -> tuple[str, ...]:
    """Ordered point names of a 2D set (the body-model sets plus wholebody133)."""
    return WHOLEBODY133 if body_set == "wholebody133" else KEYPOINT_SETS[body_set]


def default_weights(name: str) -> np.ndarray:
    """(K,) float32 per-joint default weights of a body-model keypoint set."""
    low = _LOW_WEIGHTS.get(name, {})
    return np.array([low.get(n, 1.0) for n in KEYPOINT_SETS[name]], np.float32)


def convert_points(points: np.ndarray, source: tuple[str, ...], target: tuple[str, ...]) -> np.ndarray:
    """(..., K_source, 3) points to (..., K_target, 3) by point name (see `convert`)."""
    index = {n: i for i, n in enumerate(source)}
    out = np.zeros(points.shape[:-2] + (len(target), 3), np.float32)
    for j, name in enumerate(target):
        if name not in index:
            name = _ALIASES.get(name, name)
        if name in index:
            out[..., j, :] = points[..., index[name], :]
        elif name in _MIDPOINTS and all(n in index for n in _MIDPOINTS[name]):
            a, b = (points[..., index[n], :] for n in _MIDPOINTS[name])
            both = (a[..., 2] > 0) & (b[..., 2] > 0)
            out[..., j, :2] = np.where(both[..., None], (a[..., :2] + b[..., :2]) / 2, 0)
            out[..., j, 2] = np.where(both, np.minimum(a[..., 2], b[..., 2]), 0)
    return out


def convert(kp: Keypoints, body_set: str) -> Keypoints:
    """The same detection in another body set, point by point name; points the
    source lacks get confidence 0. From wholebody133 the hands and face move to
    their own fields."""
    if kp.body_set == body_set:
        return kp
    if kp.body_set == "wholebody133":
        kp = split_wholebody(kp)
    body = convert_points(kp.body, set_names(kp.body_set), set_names(body_set))
    return replace(kp, body_set=body_set, body=body)


def split_wholebody(kp: Keypoints) -> Keypoints:
    """A wholebody133 detection as coco23 body with hands and face fields."""
    parts = {n: kp.body[:, s].copy() for n, s in WHOLEBODY_SLICES.items()}
    return replace(kp, body_set="coco23", body=parts.pop("coco23"), **parts)


def targets(kp: Keypoints, person: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One person's detection as fitting targets, keyed by body-model keypoint
    set ("mediapipe33", "body25", "coco17", "coco23", "left_hand21",
    "right_hand21", "face68"): (points (K, 3) float32 x, y, confidence,
    weights (K,) float32). Hands and face appear when the detection has those
    fields; undetected points there have confidence 0. A person from another model
    (`kp.origins`, e.g. MoveNet's COCO-17 points in a MediaPipe frame) gives only
    that model's set (ORIGIN_BODY_SETS), without hands or face."""
    if not 0 <= person < kp.num_people:
        raise IndexError(f"person {person} out of range: {kp.source or 'keypoints'} has {kp.num_people}")
    own = ORIGIN_BODY_SETS.get(kp.origins[person]) if kp.origins else None
    if own is not None:
        body = convert_points(kp.body[person], set_names(kp.body_set), set_names(own))
        return {own: (body, default_weights(own))}
    if kp.body_set == "wholebody133":
        kp = split_wholebody(kp)
    out = {kp.body_set: kp.body[person]}
    for field, name in (("left_hand", "left_hand21"), ("right_hand", "right_hand21"), ("face", "face68")):
        part = getattr(kp, field)
        if part is not None:
            out[name] = part[person]
    return {name: (pts.astype(np.float32, copy=True), default_weights(name)) for name, pts in out.items()}
