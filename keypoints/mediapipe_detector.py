"""Offline 2D keypoints with MediaPipe 0.10.21.

Body: MediaPipe Pose, 33 landmarks, confidence = landmark visibility. The
landmark model is BlazePose Heavy (`landmarks="heavy"`, model_complexity=2,
installed by scripts/setup.sh, see keypoints.models) or Full ("full",
model_complexity=1, bundled); Heavy falls back to Full with one logged warning
when its file is missing (MediaPipe would otherwise try to download it).

People: a whole-image pass plus crops around person boxes (MoveNet MultiPose
when installed, else OpenCV's HOG; keypoints.person_finder), or with
`top_down=True` crops only (the whole image only when no box is found). Every
skeleton goes through keypoints.gates: one that spans two person boxes, has
impossible limb ratios or a folded torso is re-detected in a crop around its
own person box, else dropped; each rejection is recorded in
`Keypoints.rejected`. Of two skeletons that are one person found twice
(gates.same_person) the smaller is dropped, also with its reason. A MoveNet
box that gets no BlazePose skeleton (its crop and the whole image gave nobody,
or only a rejected skeleton) keeps MoveNet's own COCO-17 points, through the
same gates, as that person's skeleton: `Keypoints.origins` says "movenet" for
it ("blazepose" for the others), and keypoints.targets fits it as coco17.
Holistic mode adds 21 points per hand
and the face mesh, reduced to the iBUG 68 layout; MediaPipe gives those no
per-point score, so a hand takes the mean visibility of its pose wrist and
finger points and the face that of the pose face points (0 when not found).

Handedness: the solutions API's Holistic crops each hand around the pose's
wrist of that side, so `left_hand_landmarks` is the subject's left hand (the
one at pose point 15, left_wrist). Checked on basketball1.png: the man faces
the camera, his right hand (image left of his left hand) comes back as
`right_hand_landmarks`, its wrist within a few pixels of pose right_wrist.

Image sizes: MediaPipe takes any image from 1x1 px (it finds nobody in tiny
ones); an image with a side of 0 px is refused with KeypointsError (MediaPipe
raises and its graph stays broken afterwards), and one with a side of 32767 px
or more aborts the process inside OpenCV's remap, so the whole-image pass runs
on a copy scaled to at most _MAX_SIDE px. The HOG people search skips images
smaller than its window (see person_finder).
"""

from __future__ import annotations

import atexit
import logging
import os
from typing import Callable

import cv2
import numpy as np

from . import models
from .files import read_image
from .gates import MIN_SCORE, same_person, skeleton_problem
from .maps import convert_points, set_names
from .person_finder import crop_around, make_finder
from .quiet import native_stderr_silenced
from .types import FACE_POINTS, HAND_POINTS, Keypoints, KeypointsError, box_iou

# MediaPipe face-mesh vertex for each iBUG-68 point (jaw 0-16, brows 17-26,
# nose 27-35, eyes 36-47, outer lips 48-59, inner lips 60-67), chosen on the
# canonical mesh and checked by drawing on astronaut.png.
FACE_MESH_TO_IBUG68: tuple[int, ...] = (
    234,
    93,
    132,
    58,
    172,
    136,
    150,
    176,
    152,
    400,
    379,
    365,
    397,
    288,
    361,
    323,
    454,
    70,
    63,
    105,
    66,
    107,
    336,
    296,
    334,
    293,
    300,
    168,
    197,
    5,
    4,
    98,
    97,
    2,
    326,
    327,
    33,
    160,
    158,
    133,
    153,
    144,
    362,
    385,
    387,
    263,
    373,
    380,
    61,
    40,
    37,
    0,
    267,
    270,
    291,
    321,
    314,
    17,
    84,
    91,
    78,
    81,
    13,
    311,
    308,
    402,
    14,
    178,
)
# Pose points whose visibility scores a hand (wrist, pinky, index, thumb) and the face.
_HAND_POSE_POINTS = {"left": [15, 17, 19, 21], "right": [16, 18, 20, 22]}
_FACE_POSE_POINTS = list(range(11))

Person = dict[str, np.ndarray]
_BLANK = np.zeros((64, 64, 3), np.uint8)
# MediaPipe aborts on a side >= 32767 px (SHRT_MAX in OpenCV's remap); larger
# images are detected on a copy scaled down to this longer side.
_MAX_SIDE = 16384
# Crops black out what lies beyond a person box grown by this share of its size
# (person_finder.crop_around): a neighbour in the crop otherwise often wins
# MediaPipe's own detector, and the boxed person is lost or merged with them.
_KEEP = 0.15
# MoveNet's point scores run lower than BlazePose's visibility (basketball1.png's
# man seen from behind: shoulders 0.38-0.47, face 0.5-0.65): its skeletons are
# judged by the gates, and compared with others, from this score up; points
# under it are guesses (that man's knees and ankles, out of the frame, at
# 0.1-0.15) and are kept as missing (0, 0, 0).
_MOVENET_MIN_SCORE = 0.2


def _points(landmarks: object, width: int, height: int) -> np.ndarray:
    """(N, 3) x, y in pixels of the processed image, visibility in [0, 1]."""
    pts = np.array([(p.x, p.y, p.visibility) for p in landmarks.landmark], np.float32)
    pts[:, :2] *= (width, height)
    pts[:, 2] = np.clip(pts[:, 2], 0, 1)
    return pts


def as_bgr(image: np.ndarray, color: str = "bgr", source: str = "") -> np.ndarray:
    """A checked, contiguous 8-bit BGR (H, W, 3) copy or view of a grey, BGR(A)
    or RGB(A) array; KeypointsError for other dtypes, shapes or no pixels."""
    if color not in ("bgr", "rgb"):
        raise ValueError(f"color must be 'bgr' or 'rgb', got {color!r}")
    image = np.asarray(image)
    if image.ndim in (2, 3) and 0 in image.shape[:2]:
        name = source or "image"
        raise KeypointsError(f"{name}: image has no pixels ({image.shape[1]}x{image.shape[0]} px)")
    if image.dtype != np.uint8:
        raise KeypointsError(f"image dtype is {image.dtype}; pass 8-bit pixels, e.g. (img * 255).astype(np.uint8)")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise KeypointsError(f"image shape {image.shape} is not (H, W), (H, W, 3) or (H, W, 4)")
    codes = {
        ("bgr", 3): None,
        ("bgr", 4): cv2.COLOR_BGRA2BGR,
        ("rgb", 3): cv2.COLOR_RGB2BGR,
        ("rgb", 4): cv2.COLOR_RGBA2BGR,
    }
    code = codes[color, image.shape[2]]
    return np.ascontiguousarray(image) if code is None else cv2.cvtColor(image, code)


class MediaPipeDetector:
    """MediaPipe Pose or Holistic, reusable over many images (create once: set-up
    costs ~0.2 s). Call it on an image to get a `Keypoints` in "mediapipe33".

    tracking=False: every image on its own; with `find_people` a person
    finder (`finder`: "auto" = MoveNet plus HOG for people it missed, HOG
    alone when MoveNet is not installed; "movenet"; "hog") proposes boxes,
    each is cropped, upscaled and detected, so small and several people are
    found. `top_down=True` skips the whole-image pass when
    the finder found someone. tracking=True: consecutive video frames,
    MediaPipe follows one person from frame to frame.

    landmarks: "heavy" (default; Full with a warning when not installed) or
    "full"; `self.landmarks` is the one that runs. gates=False turns the
    sanity gates off.
    """

    def __init__(
        self,
        *,
        holistic: bool = True,
        tracking: bool = False,
        find_people: bool = True,
        max_people: int = 8,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        crop_size: int = 512,
        landmarks: str = "heavy",
        finder: str = "auto",
        top_down: bool = False,
        gates: bool = True,
    ) -> None:
        self.holistic = holistic
        self.landmarks = models.resolve_landmarks(landmarks)
        self.top_down = top_down
        self.gates = gates
        self.tracking = tracking
        self.find_people = find_people and not tracking
        self.max_people = max_people
        self.crop_size = crop_size
        options = dict(
            static_image_mode=not tracking,
            model_complexity=models.LANDMARK_MODELS[self.landmarks],
            smooth_landmarks=True,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence,
        )
        self._options = options
        self._model = self._new_model()
        self._finder = None
        if self.find_people:
            try:
                self._finder = make_finder(finder)
            except (RuntimeError, ImportError) as e:  # MoveNet asked for but unusable
                if finder != "auto":
                    raise
                logging.getLogger(__name__).warning("%s: using HOG", e)
                self._finder = make_finder("hog")
        self.finder = None if self._finder is None else self._finder.name

    def _new_model(self) -> object:
        with native_stderr_silenced():
            try:
                import mediapipe as mp  # imported here: it takes ~1 s and logs on import
            except ImportError as e:
                raise ImportError(f"{e}: detection needs the detect extra (pip install -e '.[detect]')") from e

            solution = mp.solutions.holistic.Holistic if self.holistic else mp.solutions.pose.Pose
            return solution(**self._options)

    def close(self) -> None:
        self._model.close()

    def __enter__(self) -> "MediaPipeDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(
        self,
        image: np.ndarray | str | os.PathLike,
        *,
        color: str = "bgr",
        source: str = "",
        frame_index: int | None = None,
        timestamp_s: float | None = None,
        boxes: np.ndarray | None = None,
    ) -> Keypoints:
        """Detect people in a BGR (default) or RGB uint8 image, or an image file.
        Returns every person found (P may be 0); raises KeypointsError for a
        file or array that is not a usable image. `boxes` (N, 4) x0, y0, x1, y1:
        look in crops around these only (people carried from a video's last frame),
        no people search and no whole-image pass."""
        if isinstance(image, (str, os.PathLike)):
            source = source or str(image)
            bgr = read_image(image)
        else:
            bgr = as_bgr(image, color, source)
        h, w = bgr.shape[:2]
        rejected: list[str] = []
        try:
            people, origins = self._detect_all(bgr, rejected, boxes)
        except RuntimeError as e:  # MediaPipe's graph is unusable after an error: start a new one
            self._model.close()
            self._model = self._new_model()
            reason = str(e).strip().splitlines()[-1][:300]
            raise KeypointsError(f"{source or 'image'} ({w}x{h} px): MediaPipe failed: {reason}") from None
        fields = dict(
            image_size=(w, h),
            source=source,
            frame_index=frame_index,
            timestamp_s=timestamp_s,
            rejected=rejected,
            origins=origins,
        )
        if not people:
            empty = np.zeros((0, HAND_POINTS, 3), np.float32)
            parts = dict(left_hand=empty, right_hand=empty, face=np.zeros((0, FACE_POINTS, 3), np.float32))
            return Keypoints.empty("mediapipe33", **(parts if self.holistic else {}), **fields)
        stacked = {k: np.stack([p[k] for p in people]) for k in people[0]}
        return Keypoints("mediapipe33", **stacked, **fields)

    def _problem(
        self, person: Person, boxes: np.ndarray | None, size: tuple[int, int], min_score: float = MIN_SCORE
    ) -> str | None:
        """Why the gates reject a skeleton found in an image of `size` (width, height); None: kept."""
        if not self.gates:
            return None
        return skeleton_problem(person["body"], boxes, size, min_score)

    def _whole_image(self, bgr: np.ndarray) -> Person | None:
        h, w = bgr.shape[:2]
        if max(w, h) <= _MAX_SIDE:
            return self._run(bgr, lambda xy: xy)
        s = _MAX_SIDE / max(w, h)
        small = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        factor = np.array([w / small.shape[1], h / small.shape[0]], np.float32)
        return self._run(small, lambda xy: xy * factor)

    def _in_box(self, bgr: np.ndarray, box: np.ndarray) -> Person | None:
        """The skeleton found in a crop around `box`, if its centre lies in the box."""
        crop = crop_around(bgr, box, self.crop_size, keep=_KEEP)
        person = self._run(crop.image, crop.to_image)
        if person is None:
            return None
        found = _box(person)
        centre = (found[:2] + found[2:]) / 2
        inside = box[0] <= centre[0] <= box[2] and box[1] <= centre[1] <= box[3]
        return person if inside else None

    def _detect_all(
        self, bgr: np.ndarray, rejected: list[str], given: np.ndarray | None = None
    ) -> tuple[list[Person], list[str]]:
        """Every person's skeleton, and per person the model that gave it; `given`: the only boxes to look in."""
        size = (bgr.shape[1], bgr.shape[0])
        if given is not None:
            boxes = np.concatenate([np.asarray(given, np.float32).reshape(-1, 4), np.ones((len(given), 1))], 1)
            movenet = np.zeros((len(boxes), 17, 3), np.float32)
        elif self._finder is not None:
            boxes, movenet = self._finder(bgr)
        else:
            boxes, movenet = np.zeros((0, 5), np.float32), np.zeros((0, 17, 3), np.float32)
        people: list[Person] = []
        redo: list[int] = []  # the box whose whole-image skeleton failed a gate: detect there first
        if given is None and not (self.top_down and len(boxes)):
            first = self._whole_image(bgr)
            why = None if first is None else self._problem(first, boxes, size)
            if why:
                rejected.append(f"whole image {_where(first)}: {why}")
                if len(boxes):
                    redo = [int(np.argmax(_holds(first, boxes)))]
            elif first is not None:
                people.append(first)
        unfound = np.zeros(len(boxes), bool)  # boxes whose crop gave nobody, or only a rejected skeleton
        for k in [*redo, *range(len(boxes))]:
            if len(people) >= self.max_people:
                break
            box = boxes[k]
            if _overlaps(box, people, 0.4):
                continue  # already found by an earlier pass
            person = self._in_box(bgr, box)
            unfound[k] = person is None
            if person is None or _overlaps(_box(person), people, 0.5):
                continue
            why = self._problem(person, boxes, size)
            unfound[k] = why is not None
            if why:
                rejected.append(f"crop {_where(box)}: {why}")
            else:
                people.append(person)
        if self.top_down and unfound.any() and len(people) < self.max_people:
            self._add_whole_image(bgr, boxes[unfound], boxes, people, rejected)
        people = self._without_duplicates(people, rejected)
        found = len(people)
        self._add_movenet(boxes, movenet, unfound, size, people, rejected)
        return people, ["blazepose"] * found + ["movenet"] * (len(people) - found)

    def _without_duplicates(self, people: list[Person], rejected: list[str]) -> list[Person]:
        """`people` less each skeleton that is the same person as a larger one kept (gates.same_person)."""
        if not self.gates:
            return people
        kept: list[int] = []
        for i in sorted(range(len(people)), key=lambda i: -_area(people[i])):
            why = next((w for j in kept if (w := same_person(people[i]["body"], people[j]["body"]))), None)
            if why:
                rejected.append(f"skeleton {_where(people[i])}: {why}")
            else:
                kept.append(i)
        return [people[i] for i in sorted(kept)]

    def _add_movenet(
        self,
        boxes: np.ndarray,
        movenet: np.ndarray,
        unfound: np.ndarray,
        size: tuple[int, int],
        people: list[Person],
        rejected: list[str],
    ) -> None:
        """MoveNet's own COCO-17 points, as mediapipe33, for each `unfound` MoveNet box
        (BlazePose found nobody in its crop, or only a rejected skeleton) that no
        skeleton covers (the whole image's, or another box's)."""
        for box, points in zip(boxes[unfound], movenet[unfound]):
            if len(people) >= self.max_people:
                break
            if not points[:, 2].any():
                continue  # a HOG box: no points
            if _overlaps(box, people, 0.4):
                continue  # found already
            person = self._blank()
            sure = np.where(points[:, 2:] >= _MOVENET_MIN_SCORE, points, 0)
            person["body"] = convert_points(sure, set_names("coco17"), set_names("mediapipe33"))
            if self.gates and any(same_person(person["body"], p["body"], _MOVENET_MIN_SCORE) for p in people):
                continue
            why = self._problem(person, boxes, size, _MOVENET_MIN_SCORE)
            if why:
                rejected.append(f"movenet {_where(box)}: {why}")
            else:
                people.append(person)

    def _blank(self) -> Person:
        """A person with every point missing (confidence 0)."""
        person = {"body": np.zeros((33, 3), np.float32)}
        if self.holistic:
            hand = np.zeros((HAND_POINTS, 3), np.float32)
            person.update(left_hand=hand, right_hand=hand.copy(), face=np.zeros((FACE_POINTS, 3), np.float32))
        return person

    def _add_whole_image(
        self, bgr: np.ndarray, empty: np.ndarray, boxes: np.ndarray, people: list[Person], rejected: list[str]
    ) -> None:
        """Top-down: the whole image's skeleton for a person whose crop gave nothing
        of use (MediaPipe sometimes finds a person in the whole image but not in
        their crop), if it is centred in such a box and is not someone found already."""
        person = self._whole_image(bgr)
        if person is None:
            return
        found = _box(person)
        centre = (found[:2] + found[2:]) / 2
        in_empty = ((empty[:, :2] <= centre) & (centre <= empty[:, 2:4])).all(1).any()
        if not in_empty or _overlaps(found, people, 0.5):
            return
        why = self._problem(person, boxes, (bgr.shape[1], bgr.shape[0]))
        if why:
            rejected.append(f"whole image {_where(person)}: {why}")
        else:
            people.append(person)

    def _run(self, bgr: np.ndarray, to_image: Callable[[np.ndarray], np.ndarray]) -> Person | None:
        """One MediaPipe pass; points mapped to full-image pixels by `to_image`."""
        with native_stderr_silenced():
            result = self._model.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            person = self._person(result, bgr.shape[1], bgr.shape[0], to_image)
            if self.holistic and not self.tracking and result.face_landmarks is not None:
                # Holistic keeps the face region between calls even in static mode
                # (same image twice: face points ~3 px apart); a blank image clears it.
                self._model.process(_BLANK)
        return person

    def _person(self, result: object, w: int, h: int, to_image: Callable[[np.ndarray], np.ndarray]) -> Person | None:
        if result.pose_landmarks is None:
            return None
        pose = _points(result.pose_landmarks, w, h)
        pose[:, :2] = to_image(pose[:, :2])
        person = {"body": pose}
        if not self.holistic:
            return person
        parts = (
            ("left_hand", result.left_hand_landmarks, HAND_POINTS, None, _HAND_POSE_POINTS["left"]),
            ("right_hand", result.right_hand_landmarks, HAND_POINTS, None, _HAND_POSE_POINTS["right"]),
            ("face", result.face_landmarks, FACE_POINTS, FACE_MESH_TO_IBUG68, _FACE_POSE_POINTS),
        )
        for name, landmarks, count, index, score_points in parts:
            pts = np.zeros((count, 3), np.float32)
            if landmarks is not None:
                mesh = _points(landmarks, w, h)
                pts = mesh if index is None else mesh[list(index)]
                pts[:, :2] = to_image(pts[:, :2])
                pts[:, 2] = pose[score_points, 2].mean()
            person[name] = pts
        return person


def _box(person: Person) -> np.ndarray:
    """x0, y0, x1, y1 of a person's visible body points (else of those detected, else of all)."""
    body = person["body"]
    for least in (0.5, 0.0):
        xy = body[body[:, 2] > least, :2]
        if len(xy):
            return np.concatenate([xy.min(0), xy.max(0)])
    return np.concatenate([body[:, :2].min(0), body[:, :2].max(0)])


def _overlaps(box: np.ndarray, people: list[Person], iou: float) -> bool:
    """Whether `box` (x0, y0, x1, y1[, score]) overlaps a skeleton of `people` by more than `iou`."""
    taken = np.array([_box(p) for p in people]).reshape(-1, 4)
    return bool((box_iou(box[None, :4], taken) > iou).any())


def _area(person: Person) -> float:
    x0, y0, x1, y1 = _box(person)
    return float((x1 - x0) * (y1 - y0))


def _holds(person: Person, boxes: np.ndarray) -> np.ndarray:
    """Per box, how many of the person's confident points it holds (head and torso count double)."""
    body = person["body"]
    weight = np.where(np.arange(len(body)) <= 12, 2.0, 1.0) * (body[:, 2] > 0.5)
    x, y = body[:, 0, None], body[:, 1, None]
    inside = (x >= boxes[:, 0]) & (x <= boxes[:, 2]) & (y >= boxes[:, 1]) & (y <= boxes[:, 3])
    return (inside * weight[:, None]).sum(0)


def _where(item: Person | np.ndarray) -> str:
    box = _box(item) if isinstance(item, dict) else item
    return "(" + ",".join(f"{v:.0f}" for v in box[:4]) + ")"


_SHARED: dict[tuple[bool, bool, str], MediaPipeDetector] = {}


@atexit.register
def _close_shared() -> None:
    """Close the detectors `detect` kept (at the interpreter's exit)."""
    while _SHARED:
        _SHARED.popitem()[1].close()


def detect(
    image: np.ndarray | str | os.PathLike,
    *,
    holistic: bool = True,
    find_people: bool = True,
    color: str = "bgr",
    detector: MediaPipeDetector | None = None,
    landmarks: str = "heavy",
) -> Keypoints:
    """2D keypoints of every person in one image (a path, or a uint8 array in
    BGR order as from cv2.imread; color="rgb" for RGB arrays).

    body_set "mediapipe33"; with holistic=True also hands (21 each) and face
    (iBUG 68). P = 0 when nobody is found. Without `detector`, a detector per
    (holistic, find_people, landmarks) is created on first use and kept for
    later calls (closed at exit). landmarks: "heavy" (Full when not installed) or "full".
    """
    if detector is None:
        key = (holistic, find_people, landmarks)
        if key not in _SHARED:
            _SHARED[key] = MediaPipeDetector(holistic=holistic, find_people=find_people, landmarks=landmarks)
        detector = _SHARED[key]
    return detector(image, color=color)
