"""Names and order of the 2D keypoint sets that body models can produce in 3D.

These are the detector conventions (COCO, OpenPose, MediaPipe), so a model's
`keypoints(name)` lines up index by index with a detection in that set.
"""

from __future__ import annotations

COCO17: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
FEET6: tuple[str, ...] = (
    "left_big_toe",
    "left_small_toe",
    "left_heel",
    "right_big_toe",
    "right_small_toe",
    "right_heel",
)
# COCO-17 followed by the six foot points of COCO-WholeBody / OpenPose.
COCO23: tuple[str, ...] = COCO17 + FEET6

BODY25: tuple[str, ...] = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "mid_hip",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
    "left_big_toe",
    "left_small_toe",
    "left_heel",
    "right_big_toe",
    "right_small_toe",
    "right_heel",
)

MEDIAPIPE33: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)

# OpenPose / MediaPipe hand: wrist, then 4 points per finger from the base out.
HAND21_POINTS: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}{i}" for finger in ("thumb", "index", "middle", "ring", "pinky") for i in (1, 2, 3, 4)
)
LEFT_HAND21: tuple[str, ...] = tuple(f"left_hand_{p}" for p in HAND21_POINTS)
RIGHT_HAND21: tuple[str, ...] = tuple(f"right_hand_{p}" for p in HAND21_POINTS)

# Face: the 68-point iBUG layout OpenPose uses (its 70 adds the two pupils).
FACE68: tuple[str, ...] = tuple(f"face{i:02d}" for i in range(68))

KEYPOINT_SETS: dict[str, tuple[str, ...]] = {
    "coco17": COCO17,
    "coco23": COCO23,
    "body25": BODY25,
    "mediapipe33": MEDIAPIPE33,
    "left_hand21": LEFT_HAND21,
    "right_hand21": RIGHT_HAND21,
    "face68": FACE68,
}


def keypoint_names(name: str) -> tuple[str, ...]:
    """The ordered point names of a keypoint set; raises with the known names."""
    try:
        return KEYPOINT_SETS[name]
    except KeyError:
        raise KeyError(f"unknown keypoint set {name!r}; known: {sorted(KEYPOINT_SETS)}") from None
