"""2D keypoints for fitting: offline MediaPipe detection, OpenPose and COCO
JSON readers and writers, and maps to the body models' keypoint sets.

    kp = keypoints.detect("photo.jpg")          # Keypoints, body_set "mediapipe33"
    kp = keypoints.read_openpose("f_keypoints.json")
    for name, (points, weights) in keypoints.targets(kp.choose("largest")).items(): ...
    with keypoints.IsolatedDetector(holistic=True) as d:  # MediaPipe in a worker process:
        kp = d(image, "photo.jpg")                      # a native crash fails one item only

Native log lines (MediaPipe, TF Lite, Warp) are hidden unless
keypoints.set_verbose(True) or BODYFIT_VERBOSE=1.
"""

from .coco_json import read_coco, write_coco
from .draw import draw_keypoints
from .files import read_image
from .isolated import IsolatedDetector
from .maps import convert, default_weights, targets
from .mediapipe_detector import MediaPipeDetector, detect
from .openpose_json import read_openpose, read_openpose_folder, write_openpose
from .quiet import is_verbose, set_verbose
from .types import BODY_SET_SIZES, Keypoints, KeypointsError
from .video import read_frames, track

__all__ = [
    "BODY_SET_SIZES",
    "IsolatedDetector",
    "Keypoints",
    "KeypointsError",
    "MediaPipeDetector",
    "convert",
    "default_weights",
    "detect",
    "draw_keypoints",
    "is_verbose",
    "read_coco",
    "read_frames",
    "read_image",
    "read_openpose",
    "read_openpose_folder",
    "set_verbose",
    "targets",
    "track",
    "write_coco",
    "write_openpose",
]
