"""Video: frames read with OpenCV; one MediaPipe track for the main person, or every person of every frame."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from configs.files import atomic_path

from .mediapipe_detector import MediaPipeDetector
from .types import Keypoints, KeypointsError


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frame_count: int  # as the container states it; may be approximate
    width: int
    height: int


def _open(path: str | os.PathLike) -> cv2.VideoCapture:
    p = Path(path)
    if not p.is_file():
        raise KeypointsError(f"{p}: no such video file")
    if p.stat().st_size == 0:
        raise KeypointsError(f"{p}: empty file (0 bytes); re-copy or re-encode the video")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise KeypointsError(
            f"{p}: OpenCV cannot open this video; re-encode it, e.g. ffmpeg -i {p.name} -c:v libx264 fixed.mp4"
        )
    return cap


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame rate, stated frame count and size of a video file."""
    cap = _open(path)
    try:
        return VideoInfo(
            cap.get(cv2.CAP_PROP_FPS),
            int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        cap.release()


def _timestamp(cap: cv2.VideoCapture, index: int, fps: float) -> float | None:
    msec = cap.get(cv2.CAP_PROP_POS_MSEC)  # of the frame just read
    if msec > 0 or index == 0:
        return msec / 1000
    return index / fps if fps > 0 else None


def read_frames(path: str | os.PathLike) -> Iterator[tuple[int, float | None, np.ndarray]]:
    """Yield (frame index, timestamp in seconds, BGR frame). KeypointsError if
    the file cannot be opened or holds no frame."""
    cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            yield index, _timestamp(cap, index, fps), frame
            index += 1
        if index == 0:
            raise KeypointsError(
                f"{path}: no decodable frame; the video may be truncated or use an "
                f"unsupported codec (re-encode it with ffmpeg)"
            )
    finally:
        cap.release()


@contextlib.contextmanager
def video_writer(path: str | os.PathLike, fps: float) -> Iterator[Callable[[np.ndarray], None]]:
    """Yield a function that appends BGR frames to an MP4 (mp4v codec) at
    `fps` (30 if unknown); the file appears at `path` only when complete."""
    with atomic_path(path) as tmp:
        writer: cv2.VideoWriter | None = None

        def write(frame: np.ndarray) -> None:
            nonlocal writer
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps if fps > 0 else 30.0, size)
                if not writer.isOpened():
                    raise KeypointsError(f"{path}: OpenCV cannot write an mp4v video here")
            writer.write(frame)

        try:
            yield write
        finally:
            if writer is not None:
                writer.release()


def track(
    frames: str | os.PathLike | Iterable[np.ndarray | str | os.PathLike],
    *,
    holistic: bool = True,
    fps: float | None = None,
    color: str = "bgr",
    landmarks: str = "heavy",
) -> Iterator[Keypoints]:
    """Keypoints per frame of a video file, or of a sequence of images (paths,
    or arrays in `color` order) taken as consecutive frames at `fps` (if given).

    MediaPipe's tracking mode follows one person (the main one it finds first)
    from frame to frame; frames where it has nobody give P = 0. Each Keypoints
    carries its frame_index and timestamp_s (from the video, or index / fps).
    `landmarks`: "heavy" (Full when not installed) or "full".
    """
    if isinstance(frames, (str, os.PathLike)):
        source = str(frames)
        items = ((i, t, f, "bgr") for i, t, f in read_frames(frames))
    else:
        source = "frames"
        items = ((i, i / fps if fps else None, f, color) for i, f in enumerate(frames))
    with MediaPipeDetector(holistic=holistic, tracking=True, landmarks=landmarks) as detector:
        for index, timestamp, frame, order in items:
            name = "" if isinstance(frame, (str, os.PathLike)) else f"{source}#{index}"
            yield detector(frame, color=order, source=name, frame_index=index, timestamp_s=timestamp)


def detect_people(
    path: str | os.PathLike, detector: MediaPipeDetector, search_every: int = 1, name: str | None = None
) -> Iterator[Keypoints]:
    """Every person of every frame of a video file (`detector`: a still-image MediaPipeDetector).
    People are searched (the detector's people finder, whole image and crops) every
    `search_every` frames and wherever nobody was carried; between searches BlazePose looks in
    crops around the people of the frame before. `name` names the frames' source (`name#index`)."""
    carried = np.zeros((0, 4), np.float32)
    for index, timestamp, frame in read_frames(path):
        search = index % search_every == 0 or not len(carried)
        kp = detector(
            frame,
            source=f"{name or path}#{index}",
            frame_index=index,
            timestamp_s=timestamp,
            boxes=None if search else carried,
        )
        boxes = kp.person_boxes()
        carried = boxes[np.isfinite(boxes).all(1)]
        yield kp
