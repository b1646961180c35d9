"""Headless mesh rendering with pyrender (EGL, Mesa's software driver when there is no GPU)."""

from __future__ import annotations

import os
from typing import Sequence

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
    """Render meshes given in OpenCV camera coordinates (x right, y down, z forward).

    `vertices`: one mesh (V, 3), or several ((N, V, 3) or a list) drawn in one scene, so
    nearer ones hide farther ones, coloured in turn from `colors`. Returns an RGB uint8
    image of `size` (width, height); with `image` (RGB or grey) the meshes are blended over it.
    """
    try:
        import pyrender
        import trimesh
    except ImportError as e:
        raise ImportError(f"{e}: rendering needs the render extra (pip install -e '.[render]')") from e

    width, height = size
    meshes = [vertices] if isinstance(vertices, np.ndarray) and vertices.ndim == 2 else list(vertices)
    scene = pyrender.Scene(bg_color=(0, 0, 0, 0), ambient_light=(0.35, 0.35, 0.35))
    for i, verts in enumerate(meshes):
        material = pyrender.MetallicRoughnessMaterial(
            metallicFactor=0.1, roughnessFactor=0.7, baseColorFactor=(*colors[i % len(colors)], 1.0)
        )
        mesh = trimesh.Trimesh(verts, faces, process=False)
        scene.add(pyrender.Mesh.from_trimesh(mesh, material=material, smooth=True), pose=_CV_TO_GL)
    cam = pyrender.IntrinsicsCamera(fx=focal[0], fy=focal[1], cx=center[0], cy=center[1], znear=0.05, zfar=100.0)
    scene.add(cam, pose=np.eye(4))
    scene.add(pyrender.DirectionalLight(color=np.ones(3), intensity=3.0), pose=np.eye(4))
    renderer = pyrender.OffscreenRenderer(width, height)
    try:
        rgba, _ = renderer.render(scene, flags=pyrender.RenderFlags.RGBA)
    finally:
        renderer.delete()
    if image is None:
        background = np.full((height, width, 3), 255, np.uint8)
    else:
        background = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    mask = rgba[..., 3:4].astype(np.float32) / 255.0 * alpha
    return (rgba[..., :3] * mask + background * (1.0 - mask)).astype(np.uint8)


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
