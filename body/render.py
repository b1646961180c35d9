"""Headless mesh rendering with pyrender (EGL, Mesa's software driver when there is no GPU)."""

from __future__ import annotations

import os
import sys
from typing import Any, Sequence

import numpy as np

if "DISPLAY" not in os.environ:
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

# SMPL-X/Anny frame (y up, facing +z) to the OpenCV camera frame (y down, looking along +z).
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


# Mesh colours: a person of a run is drawn in PALETTE[person_id % 6] (a video track keeps its colour).
PALETTE = (
    (0.65, 0.74, 0.86),
    (0.90, 0.62, 0.45),
    (0.58, 0.82, 0.58),
    (0.85, 0.60, 0.80),
    (0.90, 0.85, 0.50),
    (0.55, 0.80, 0.85),
)


class OverlayRenderer:
    """Draws meshes over images, keeping what one frame's overlay can hand the next: an
    OpenGL renderer per render size (creating one costs about as much as a frame's drawing on
    Mesa's software renderer), the materials per colour and the light. `scale` < 1 draws the meshes
    at that fraction of the image's resolution and upsamples them to the image's size (the overlay
    keeps the image's size; edges are softer). Use from one thread; `close` frees the renderers
    (also on leaving a `with` block).
    """

    def __init__(self, scale: float = 1.0) -> None:
        self._renderers: dict[tuple[int, int], Any] = {}  # pyrender.OffscreenRenderer by (width, height)
        if not 0 < scale <= 1:
            raise ValueError(f"overlay scale must be in (0, 1], got {scale}")
        try:
            import pyrender
        except ImportError as e:
            raise ImportError(f"{e}: rendering needs the render extra (pip install -e '.[render]')") from e
        self.scale = scale
        self._pyrender = pyrender
        self._materials: dict[tuple[float, float, float], pyrender.Material] = {}
        self._light = pyrender.DirectionalLight(color=np.ones(3), intensity=3.0)

    def __enter__(self) -> OverlayRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Before pyrender's own finaliser, whose eglTerminate would end other renderers' contexts; not
        # while the interpreter shuts down (the process's contexts end with it, and imports fail then).
        if not sys.is_finalizing():
            self.close()

    def close(self) -> None:
        """Free every renderer (OpenGL contexts); a later `render` makes new ones."""
        for renderer in self._renderers.values():
            _free(renderer)
        self._renderers.clear()

    def _material(self, color: tuple[float, float, float]):
        if color not in self._materials:
            self._materials[color] = self._pyrender.MetallicRoughnessMaterial(
                metallicFactor=0.1, roughnessFactor=0.7, baseColorFactor=(*color, 1.0)
            )
        return self._materials[color]

    def render(
        self,
        vertices: np.ndarray | Sequence[np.ndarray],
        faces: np.ndarray,
        focal: tuple[float, float],
        center: tuple[float, float],
        size: tuple[int, int],
        image: np.ndarray | None = None,
        colors: Sequence[tuple[float, float, float]] = PALETTE,
        alpha: float = 0.8,
    ) -> np.ndarray:
        """Render meshes given in OpenCV camera coordinates (x right, y down, z forward).

        `vertices`: one mesh (V, 3), or several ((N, V, 3) or a list) drawn in one scene, so
        nearer ones hide farther ones, coloured in turn from `colors`. Returns an RGB uint8
        image of `size` (width, height); with `image` (RGB or grey) the meshes are blended over it.
        """
        pyrender = self._pyrender
        width, height = size
        s = self.scale
        drawn = (max(1, round(width * s)), max(1, round(height * s)))
        meshes = [vertices] if isinstance(vertices, np.ndarray) and vertices.ndim == 2 else list(vertices)
        scene = pyrender.Scene(bg_color=(0, 0, 0, 0), ambient_light=(0.35, 0.35, 0.35))
        for i, verts in enumerate(meshes):
            material = self._material(tuple(colors[i % len(colors)]))
            scene.add(_smooth_mesh(pyrender, verts, faces, material), pose=_CV_TO_GL)
        # pyrender places the principal point in pixel-edge coordinates, so it scales as it is
        # (and cv2.resize maps the drawn pixels back in the same convention).
        cam = pyrender.IntrinsicsCamera(
            fx=focal[0] * s, fy=focal[1] * s, cx=center[0] * s, cy=center[1] * s, znear=0.05, zfar=100.0
        )
        scene.add(cam, pose=np.eye(4))
        scene.add(self._light, pose=np.eye(4))
        if drawn not in self._renderers:
            self._renderers[drawn] = pyrender.OffscreenRenderer(*drawn)
        rgba, _ = self._renderers[drawn].render(scene, flags=pyrender.RenderFlags.RGBA)
        if drawn != (width, height):
            import cv2

            rgba = cv2.resize(rgba, (width, height), interpolation=cv2.INTER_LINEAR)
        if image is None:
            background = np.full((height, width, 3), 255, np.uint8)
        else:
            background = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
        return _blend(rgba, background, alpha)


def _smooth_mesh(pyrender, vertices: np.ndarray, faces: np.ndarray, material):
    """The pyrender mesh `pyrender.Mesh.from_trimesh(trimesh.Trimesh(vertices, faces, process=False),
    material, smooth=True)` makes, the same arrays (trimesh's angle-weighted vertex normals, by
    trimesh's own functions) without a Trimesh object, whose cache hashes the arrays on every access
    (about a third of the 10 ms a 13,718-vertex body's mesh took), nor a copy of the material."""
    from pyrender.constants import GLTF
    from trimesh import geometry, triangles

    v = np.array(vertices, dtype=np.float64, order="C")
    f = np.array(faces, dtype=np.int64, order="C")
    corners = v[f]
    normals, valid = triangles.normals(triangles=corners, crosses=triangles.cross(corners))
    if not valid.all():  # degenerate faces get zero normals, which the vertex normals leave out (as in Trimesh)
        padded = np.zeros((len(f), 3))
        padded[valid] = normals
        normals = padded
    vertex_normals = geometry.weighted_vertex_normals(len(v), f, normals, triangles.angles(corners))
    primitive = pyrender.Primitive(
        positions=v, normals=vertex_normals, indices=f, material=material, mode=GLTF.TRIANGLES
    )
    return pyrender.Mesh(primitives=[primitive])


def _blend(rgba: np.ndarray, background: np.ndarray, alpha: float) -> np.ndarray:
    """`rgba` (uint8, straight alpha) times `alpha` over `background` (H, W, 3), as uint8. Only the
    box around the drawn pixels is computed: outside it the background stays as it is, as the whole
    image's blend leaves it (x * 1.0 + 0 * 0.0), and the box's pixels get the same float32 arithmetic."""
    out = background.astype(np.uint8)
    rows = np.flatnonzero(rgba[..., 3].any(1))
    if not len(rows):
        return out
    cols = np.flatnonzero(rgba[rows[0] : rows[-1] + 1, :, 3].any(0))
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    drawn = rgba[box]
    mask = drawn[..., 3:4].astype(np.float32) / 255.0 * alpha
    out[box] = (drawn[..., :3] * mask + background[box] * (1.0 - mask)).astype(np.uint8)
    return out


def _free(renderer) -> None:
    """Free a pyrender OffscreenRenderer's OpenGL objects and context. On EGL the display is left
    initialised: pyrender's own `delete` calls eglTerminate on the process's one display, which
    destroys every other live renderer's context too (a kept renderer would fail on its next frame)."""
    platform = renderer._platform
    if type(platform).__name__ != "EGLPlatform":
        renderer.delete()
        return
    from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglDestroyContext, eglMakeCurrent

    platform.make_current()
    renderer._renderer.delete()
    eglMakeCurrent(platform._egl_display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)
    eglDestroyContext(platform._egl_display, platform._egl_context)
    renderer._renderer = renderer._platform = None  # pyrender's __del__ then has nothing left to free


def render_overlay(
    vertices: np.ndarray | Sequence[np.ndarray],
    faces: np.ndarray,
    focal: tuple[float, float],
    center: tuple[float, float],
    size: tuple[int, int],
    image: np.ndarray | None = None,
    colors: Sequence[tuple[float, float, float]] = PALETTE,
    alpha: float = 0.8,
) -> np.ndarray:
    """One overlay with a renderer of its own (`OverlayRenderer.render`; a run's frames share one)."""
    with OverlayRenderer() as renderer:
        return renderer.render(vertices, faces, focal, center, size, image, colors, alpha)


def look_at_camera(vertices: np.ndarray, size: tuple[int, int], fov_deg: float = 30.0) -> tuple[np.ndarray, float]:
    """Place a camera in front of a body (facing +z in model space) that frames it.

    Returns the vertices in OpenCV camera coordinates and the focal length in pixels.
    """
    width, height = size
    focal = 0.5 * height / np.tan(np.radians(fov_deg) / 2)
    lo, hi = vertices.min(0), vertices.max(0)
    centre = (lo + hi) / 2
    extent = max((hi[1] - lo[1]) / height, (hi[0] - lo[0]) / width) * focal * 1.15
    # The camera sits on the body's +z side looking back at it (a 180 deg turn about x):
    # model +y (up) -> image up, model +x (subject's left) -> image right.
    cam = (vertices - centre) * np.array([1.0, -1.0, -1.0])
    cam[:, 2] += extent + (hi[2] - lo[2]) / 2
    return cam, focal
