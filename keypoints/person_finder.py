"""Find people before pose detection (OpenCV's HOG people detector), and crop
and upscale around them so that people small in the frame are found."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# HOG's window is 64x128 px (people ~96 px tall). Images are searched at a
# scale where the longer side is at most _MAX_SIDE; small images are searched
# again at 2x when nothing turned up. A search is skipped when the image, at
# its scale, is narrower or lower than the window: OpenCV 4.x's
# detectMultiScale then aborts or segfaults (seen on 1x1 ... 47x200, 200x96,
# 1000x3 px) instead of returning nothing; from 64x128 px up it never did
# (checked on 130 sizes in 64-400 x 128-400 and long thin strips).
_MAX_SIDE = 1280
_MIN_SCORE = 0.3


@dataclass(frozen=True)
class Crop:
    """A square crop of an image, resized to `size` px: image = crop / scale + origin."""

    image: np.ndarray
    x0: float
    y0: float
    scale: float

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Crop pixel coordinates (..., 2) to full-image pixel coordinates."""
        return xy / self.scale + np.array([self.x0, self.y0], np.float32)


class PersonFinder:
    """Person boxes (x0, y0, x1, y1, score) from OpenCV's HOG people detector."""

    def __init__(self, min_score: float = _MIN_SCORE) -> None:
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.min_score = min_score

    def fits(self, width: int, height: int) -> bool:
        """Whether an image of this size holds one detection window."""
        win_w, win_h = self._hog.winSize
        return width >= win_w and height >= win_h

    def _search(self, image: np.ndarray, scale: float) -> np.ndarray:
        h, w = image.shape[:2]
        size = (int(round(w * scale)), int(round(h * scale)))
        if not self.fits(*size):
            return np.zeros((0, 5), np.float32)  # never reaches detectMultiScale (see above)
        small = image if scale == 1 else cv2.resize(image, None, fx=scale, fy=scale)
        if not self.fits(small.shape[1], small.shape[0]):
            return np.zeros((0, 5), np.float32)
        rects, scores = self._hog.detectMultiScale(small, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return np.zeros((0, 5), np.float32)
        rects = np.asarray(rects, np.float32) / scale
        boxes = np.column_stack([rects[:, :2], rects[:, :2] + rects[:, 2:], np.ravel(scores)])
        return boxes[boxes[:, 4] >= self.min_score]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(N, 5) float32 boxes in image pixels, most confident first."""
        scale = min(1.0, _MAX_SIDE / max(image.shape[:2]))
        boxes = self._search(image, scale)
        if len(boxes) == 0 and 2 * max(image.shape[:2]) <= _MAX_SIDE:
            boxes = self._search(image, 2.0)
        return boxes[np.argsort(-boxes[:, 4])].astype(np.float32)


def crop_around(image: np.ndarray, box: np.ndarray, size: int = 512, margin: float = 0.25) -> Crop:
    """A square crop centred on `box` (x0, y0, x1, y1), its longer side grown by
    `margin` each way, padded with black outside the image, resized to `size`."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    n = max(int(round(side)), 1)
    h, w = image.shape[:2]
    pad = ((max(0, -top), max(0, top + n - h)), (max(0, -left), max(0, left + n - w)), (0, 0))
    window = image[max(0, top) : top + n, max(0, left) : left + n]
    window = np.pad(window, pad[: image.ndim])
    interp = cv2.INTER_CUBIC if size > n else cv2.INTER_AREA
    return Crop(cv2.resize(window, (size, size), interpolation=interp), left, top, size / n)
