"""SMPL-X skeleton facts shared by every back end: joint names, order and parents."""

from __future__ import annotations

# Joints 0..21: pelvis + the 21 body-pose joints, in SMPL-X order.
BODY_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
BODY_PARENTS: tuple[int, ...] = (
    -1,
    0,
    0,
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    9,
    9,
    12,
    13,
    14,
    16,
    17,
    18,
    19,
)
NUM_BODY_JOINTS = 21  # body_pose joints (pelvis excluded)

# Finger joints of one hand in SMPL-X order (index, middle, pinky, ring, thumb).
HAND_JOINT_NAMES: tuple[str, ...] = tuple(
    f"{finger}{i}" for finger in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3)
)

# Full SMPL-X joint list (55): body, jaw, eyes, left hand, right hand.
SMPLX_JOINT_NAMES: tuple[str, ...] = (
    BODY_JOINT_NAMES
    + ("jaw", "left_eye_smplhf", "right_eye_smplhf")
    + tuple(f"left_{n}" for n in HAND_JOINT_NAMES)
    + tuple(f"right_{n}" for n in HAND_JOINT_NAMES)
)


def mirrored_name(name: str) -> str:
    """A joint's or keypoint's left/right counterpart ("left_hip" <-> "right_hip", "mouth_left" <->
    "mouth_right"); itself for a name on the midline."""
    return name.replace("left", "@").replace("right", "left").replace("@", "right")


# Left/right swap permutation of the 22 body joints (for mirroring poses).
BODY_MIRROR: tuple[int, ...] = tuple(BODY_JOINT_NAMES.index(mirrored_name(n)) for n in BODY_JOINT_NAMES)

# Flexion axis of each hinge in the SMPL-X convention (the joint's axis-angle points
# along it when the limb bends the natural way): knees flex about +x (the ankle goes
# back), the left elbow about -y and the right about +y (the hand comes forward).
HINGE_FLEXION_AXES: dict[str, tuple[float, float, float]] = {
    "left_knee": (1.0, 0.0, 0.0),
    "right_knee": (1.0, 0.0, 0.0),
    "left_elbow": (0.0, -1.0, 0.0),
    "right_elbow": (0.0, 1.0, 0.0),
}
