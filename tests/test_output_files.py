"""The atomic writers' output (configs.files): OBJ text as one %-format per line kind, PNGs of the
same pixels at the fast zlib level, and the overlay blend over the drawn box only (body.render)."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from body.render import _blend
from configs.files import PNG_COMPRESSION, obj_faces, write_image, write_obj


def _old_obj_text(vertices: np.ndarray, faces: np.ndarray) -> str:
    """write_obj's text before faces could be passed formatted (83673eb)."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3) + 1
    return ("v %.6f %.6f %.6f\n" * len(v)) % tuple(v.ravel().tolist()) + ("f %d %d %d\n" * len(f)) % tuple(
        f.ravel().tolist()
    )


def test_obj_with_formatted_faces_is_the_same_text(tmp_path):
    rng = np.random.default_rng(0)
    verts = rng.normal(0, 1, (500, 3)).astype(np.float32)
    verts[:3] = [[0.0, -0.0, 1e-7], [-5e-7, 5e-7, 123.4567895], [np.float32(1 / 3), -2.5, 1e6]]
    faces = rng.integers(0, 500, (900, 3)).astype(np.int32)
    write_obj(tmp_path / "array.obj", verts, faces)
    write_obj(tmp_path / "text.obj", verts, obj_faces(faces))
    old = _old_obj_text(verts, faces).encode()
    assert (tmp_path / "array.obj").read_bytes() == old
    assert (tmp_path / "text.obj").read_bytes() == old


@pytest.mark.parametrize("shape", [(48, 64, 3), (48, 64), (48, 64, 4)])
def test_png_has_the_same_pixels_at_the_fast_level(tmp_path, shape):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, shape, np.uint8)
    image[:20] = 200  # flat areas too, where the levels' encodings differ most
    write_image(tmp_path / "fast.png", image)
    iio.imwrite(tmp_path / "default.png", image, extension=".png")  # write_image's png before (zlib level 6)
    fast, default = iio.imread(tmp_path / "fast.png"), iio.imread(tmp_path / "default.png")
    assert fast.dtype == np.uint8 and fast.shape == image.shape
    assert (fast == image).all() and (fast == default).all()
    assert PNG_COMPRESSION == 1 and not list(tmp_path.glob(".bodyfit-tmp-*"))


def test_jpeg_is_written_as_before(tmp_path):
    image = np.random.default_rng(2).integers(0, 256, (48, 64, 3), np.uint8)
    write_image(tmp_path / "a.jpg", image)
    iio.imwrite(tmp_path / "b.jpg", image, extension=".jpg")
    assert (tmp_path / "a.jpg").read_bytes() == (tmp_path / "b.jpg").read_bytes()


def _whole_blend(rgba: np.ndarray, background: np.ndarray, alpha: float) -> np.ndarray:
    """OverlayRenderer.render's blend before it kept to the drawn box (83673eb)."""
    mask = rgba[..., 3:4].astype(np.float32) / 255.0 * alpha
    return (rgba[..., :3] * mask + background * (1.0 - mask)).astype(np.uint8)


@pytest.mark.parametrize("alpha", [0.8, 1.0, 0.0, 0.37])
def test_blend_over_the_drawn_box_equals_the_whole_image_blend(alpha):
    rng = np.random.default_rng(3)
    background = rng.integers(0, 256, (60, 80, 3), np.uint8)
    rgba = np.zeros((60, 80, 4), np.uint8)
    rgba[10:30, 20:35] = rng.integers(0, 256, (20, 15, 4))  # partial alphas, some zero, inside the box
    rgba[40:50, 60:70] = rng.integers(0, 256, (10, 10, 4))
    rgba[5, 79, 3] = 1  # a lone faint pixel at the edge widens the box to it
    rgba[55, 3, :3] = 200  # colour without alpha: not drawn
    for drawn in (rgba, np.zeros_like(rgba), np.full_like(rgba, 255)):
        expected = _whole_blend(drawn, background, alpha)
        got = _blend(drawn, background, alpha)
        assert got.dtype == np.uint8 and (got == expected).all()
    assert (_blend(np.zeros_like(rgba), background, alpha) == background).all()
