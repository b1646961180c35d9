"""Atomic output files and checked image loading."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from configs.files import atomic_path

from .types import KeypointsError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | os.PathLike, obj: object) -> None:
    atomic_write_bytes(path, json.dumps(obj, separators=(",", ":")).encode())


def float_list(points: np.ndarray | None) -> list[float]:
    """Flat JSON-ready floats; str() of a float32 is its shortest exact form,
    so the file stays compact and reads back to the same float32 array."""
    return [] if points is None else [float(str(v)) for v in np.asarray(points, np.float32).ravel()]


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an image atomically, format from the suffix."""
    ok, buf = cv2.imencode(Path(path).suffix or ".png", image)
    if not ok:
        raise KeypointsError(f"{path}: OpenCV could not encode the image")
    atomic_write_bytes(path, buf.tobytes())


def read_json(path: str | os.PathLike) -> object:
    """Parse a JSON file; a KeypointsError names the file on any failure."""
    try:
        return json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise KeypointsError(f"{path}: no such file") from None
    except OSError as e:
        raise KeypointsError(f"{path}: cannot read ({e.strerror}); check the path") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KeypointsError(f"{path}: not valid JSON ({e}); is it a complete keypoint file?") from None


def _looks_truncated(data: bytes) -> bool:
    tail = data[-1024:]
    if data.startswith(b"\x89PNG"):
        return b"IEND" not in tail
    if data.startswith(b"\xff\xd8"):
        return b"\xff\xd9" not in tail
    return False


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Load an image file as 8-bit BGR (H, W, 3); KeypointsError when the file
    is missing, empty, truncated or not an image."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise KeypointsError(f"{p}: cannot read ({e.strerror}); check the path") from None
    hint = "re-export or re-download the image"
    if not data:
        raise KeypointsError(f"{p}: empty file (0 bytes); {hint}")
    if _looks_truncated(data):
        raise KeypointsError(f"{p}: truncated image (end marker missing); {hint}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise KeypointsError(f"{p}: not a readable image (OpenCV could not decode it); {hint}")
    return image
