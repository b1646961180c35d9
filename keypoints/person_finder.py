"""Find people before pose detection, and crop and upscale around them so that
people small in the frame are found.

Two finders, called on an image, give (N, 5) boxes x0, y0, x1, y1, score in image
pixels, and per box MoveNet's COCO-17 points (N, 17, 3) (x, y in image pixels,
score; all 0 for a box from HOG): MoveNet MultiPose Lightning (whole bodies, up
to 6 people, no face needed; installed at set-up, see keypoints.models) and
OpenCV's HOG people detector (the fallback). `make_finder("auto")` picks MoveNet
when it is installed; a finder's `name` says which it is."""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from . import models
from .types import box_iou

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


class HogFinder:
    """Person boxes (x0, y0, x1, y1, score) from OpenCV's HOG people detector."""

    name = "hog"

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

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 5) float32 boxes in image pixels, most confident first, and their (no) points (N, 17, 3)."""
        scale = min(1.0, _MAX_SIDE / max(image.shape[:2]))
        boxes = self._search(image, scale)
        if len(boxes) == 0 and 2 * max(image.shape[:2]) <= _MAX_SIDE:
            boxes = self._search(image, 2.0)
        return boxes[np.argsort(-boxes[:, 4])].astype(np.float32), np.zeros((len(boxes), 17, 3), np.float32)


# MoveNet MultiPose takes any size that is a multiple of 32; 256 px on the
# longer side is its trained resolution (26-50 ms per image on 2 cores).
_MOVENET_SIZE = 256
_MOVENET_MIN_SCORE = 0.2
# Images of 512 px or more (and 256 px or more on the shorter side) are also
# searched in TILES x TILES overlapping tiles, each this share of the width and
# height: people ~1/10 of the frame (the pedestrians of OpenCV's vtest.avi) are
# found only there.
TILES = 2
_TILE_SHARE = 0.6


class MoveNetFinder:
    """Person boxes and their COCO-17 points from MoveNet MultiPose Lightning
    (Apache-2.0), letterboxed to 256x256 px."""

    name = "movenet"

    def __init__(
        self, min_score: float = _MOVENET_MIN_SCORE, num_threads: int | None = None, tiles: bool = True
    ) -> None:
        if not models.movenet_available():
            where = f"{models.movenet_path()}, ai-edge-litert"
            raise RuntimeError(f"MoveNet is not installed ({where}); run scripts/setup.sh")
        from ai_edge_litert.interpreter import Interpreter

        threads = num_threads or min(4, os.cpu_count() or 1)
        self._net = Interpreter(model_path=str(models.movenet_path()), num_threads=threads)
        size = (1, _MOVENET_SIZE, _MOVENET_SIZE, 3)
        self._input = self._net.get_input_details()[0]["index"]
        self._net.resize_tensor_input(self._input, size)
        self._net.allocate_tensors()
        self._output = self._net.get_output_details()[0]["index"]
        self.min_score = min_score
        self.tiles = tiles

    def fits(self, width: int, height: int) -> bool:
        return width >= 1 and height >= 1

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 5) float32 boxes in image pixels, most confident first, and their points (N, 17, 3): the whole
        image, plus (with `tiles`) TILES x TILES overlapping tiles for people too
        small at 256 px; a tile's box cut by the tile's inner edge is dropped, and
        of boxes overlapping by IoU > 0.5 the more confident is kept."""
        boxes, kps = self._detect(image)
        h, w = image.shape[:2]
        if self.tiles and max(w, h) >= 2 * _MOVENET_SIZE and min(w, h) >= _MOVENET_SIZE:
            tw, th = int(w * _TILE_SHARE), int(h * _TILE_SHARE)
            for tx in np.linspace(0, w - tw, TILES).round().astype(int):
                for ty in np.linspace(0, h - th, TILES).round().astype(int):
                    b, k = self._detect(image[ty : ty + th, tx : tx + tw])
                    b[:, :4] += (tx, ty, tx, ty)
                    k[:, :, :2] += (tx, ty)
                    edge = 2.0  # px: a box this close to an inner tile edge was cut by it
                    cut = ((b[:, 0] < tx + edge) & (tx > 0)) | ((b[:, 2] > tx + tw - edge) & (tx + tw < w))
                    cut |= ((b[:, 1] < ty + edge) & (ty > 0)) | ((b[:, 3] > ty + th - edge) & (ty + th < h))
                    boxes, kps = np.concatenate([boxes, b[~cut]]), np.concatenate([kps, k[~cut]])
            order = np.argsort(-boxes[:, 4], kind="stable")
            boxes, kps = boxes[order], kps[order]
            iou = box_iou(boxes[:, :4], boxes[:, :4])
            keep: list[int] = []
            for i in range(len(boxes)):
                if all(iou[i, j] <= 0.5 for j in keep):
                    keep.append(i)
            boxes, kps = boxes[keep], kps[keep]
        return boxes, kps

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 5) and COCO-17 points (N, 17, 3) in `image`'s pixels, letterboxed to 256 px."""
        h, w = image.shape[:2]
        n = _MOVENET_SIZE
        s = min(n / w, n / h)
        rw, rh = max(1, round(w * s)), max(1, round(h * s))
        canvas = np.zeros((n, n, 3), np.uint8)
        px, py = (n - rw) // 2, (n - rh) // 2
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        canvas[py : py + rh, px : px + rw] = cv2.resize(image, (rw, rh), interpolation=interp)
        self._net.set_tensor(self._input, cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)[None])
        self._net.invoke()
        rows = self._net.get_tensor(self._output)[0]  # (6, 56): 17 x (y, x, score), box y0 x0 y1 x1, score
        rows = rows[rows[:, 55] >= self.min_score]
        rows = rows[np.argsort(-rows[:, 55])]
        offset = np.array([px, py], np.float32)
        boxes = np.zeros((len(rows), 5), np.float32)
        boxes[:, [0, 1]] = (rows[:, [52, 51]] * n - offset) / s
        boxes[:, [2, 3]] = (rows[:, [54, 53]] * n - offset) / s
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        boxes[:, 4] = rows[:, 55]
        kps = rows[:, :51].reshape(-1, 17, 3)[:, :, [1, 0, 2]].astype(np.float32)
        kps[:, :, :2] = (kps[:, :, :2] * n - offset) / s
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return boxes[keep], kps[keep]


class UnionFinder:
    """MoveNet's boxes, then HOG's boxes of people MoveNet missed (MoveNet at
    256 px misses people under ~1/15 of the image's longer side, e.g. a 250 px
    person pasted on a 1280x720 canvas; HOG's 128 px window finds them)."""

    name = "movenet+hog"

    def __init__(self, first: MoveNetFinder, extra: HogFinder) -> None:
        self.first, self.extra = first, extra

    def fits(self, width: int, height: int) -> bool:
        return self.first.fits(width, height)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, points = self.first(image)
        more, _ = self.extra(image)
        if len(boxes) and len(more):
            a, b = more[:, None, :4], boxes[None, :, :4]
            iw = (np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])).clip(0)
            ih = (np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])).clip(0)
            own = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
            covered = (iw * ih / np.maximum(own, 1e-6)).max(1)  # share of a HOG box inside a MoveNet box
            more = more[covered < 0.5]
        none = np.zeros((len(more), 17, 3), np.float32)
        return np.concatenate([boxes, more]).astype(np.float32), np.concatenate([points, none])


def make_finder(kind: str = "auto") -> HogFinder | MoveNetFinder | UnionFinder:
    """ "movenet", "hog", or "auto" (MoveNet plus HOG's boxes of people MoveNet
    missed; HOG alone when MoveNet is not installed)."""
    if kind == "auto":
        return UnionFinder(MoveNetFinder(), HogFinder()) if models.movenet_available() else HogFinder()
    if kind == "movenet":
        return MoveNetFinder()
    if kind == "hog":
        return HogFinder()
    raise ValueError(f"finder must be 'auto', 'movenet' or 'hog', got {kind!r}")


def crop_around(
    image: np.ndarray, box: np.ndarray, size: int = 512, margin: float = 0.25, keep: float | None = None
) -> Crop:
    """A square crop centred on `box` (x0, y0, x1, y1), its longer side grown by
    `margin` each way, padded with black outside the image, resized to `size`.
    With `keep`, pixels outside the box grown by `keep` x its width and height
    each way are blacked out too, so that a neighbour does not draw the pose
    model's own person detector away from the boxed person."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    n = max(int(round(side)), 1)
    h, w = image.shape[:2]
    pad = ((max(0, -top), max(0, top + n - h)), (max(0, -left), max(0, left + n - w)), (0, 0))
    window = image[max(0, top) : top + n, max(0, left) : left + n]
    window = np.pad(window, pad[: image.ndim])
    if keep is not None:
        gx, gy = keep * (x1 - x0), keep * (y1 - y0)
        u0, u1 = (int(round(v - left)) for v in (x0 - gx, x1 + gx))
        v0, v1 = (int(round(v - top)) for v in (y0 - gy, y1 + gy))
        inside = np.zeros(window.shape[:2], bool)
        inside[max(0, v0) : max(0, v1), max(0, u0) : max(0, u1)] = True
        window = np.where(inside[..., None] if window.ndim == 3 else inside, window, 0).astype(window.dtype)
    interp = cv2.INTER_CUBIC if size > n else cv2.INTER_AREA
    return Crop(cv2.resize(window, (size, size), interpolation=interp), left, top, size / n)
