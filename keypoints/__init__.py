"""2D keypoints for fitting: offline MediaPipe detection, OpenPose and COCO
JSON readers and writers, and maps to the body models' keypoint sets.

    kp = keypoints.detect("photo.jpg")          # Keypoints, body_set "mediapipe33"
    kp = keypoints.read_openpose("f_keypoints.json")
    for name, (points, weights) in keypoints.targets(kp.choose("largest")).items(): ...
"""

from .coco_json import read_coco, write_coco
from .draw import draw_keypoints
from .files import read_image
from .maps import convert, default_weights, targets
from .mediapipe_detector import MediaPipeDetector, detect
from .openpose_json import read_openpose, read_openpose_folder, write_openpose
from .types import BODY_SET_SIZES, Keypoints, KeypointsError
from .video import read_frames, track

__all__ = [
    "BODY_SET_SIZES",
    "Keypoints",
    "KeypointsError",
    "MediaPipeDetector",
    "convert",
    "default_weights",
    "detect",
    "draw_keypoints",
    "read_coco",
    "read_frames",
    "read_image",
    "read_openpose",
    "read_openpose_folder",
    "targets",
    "track",
    "write_coco",
    "write_openpose",
]
