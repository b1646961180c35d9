"""BVH of a `Motion`: the 22-joint SMPL-X body skeleton with the fitted shape's rest offsets.

Joints are named as SMPL-X names them (pelvis, left_hip, ...); every joint's rest
frame is aligned with the world axes (y up, the body facing +z in the rest
T-pose), so a joint's BVH rotation is its SMPL-X local rotation. The pelvis
carries Xposition Yposition Zposition (its absolute world position; its OFFSET is
zero) and every joint Zrotation Xrotation Yrotation (R = Rz Rx Ry, degrees).
Leaf joints end in an End Site half their own bone's length further along it.
Frames run from the first to the last fitted frame at the clip's fps; a frame
without a fit holds the last fitted pose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from body.skeleton import BODY_JOINT_NAMES, BODY_PARENTS
from configs.files import write_text
from fitting.export_motion import Motion

UNITS = {"m": 1.0, "cm": 100.0}
_CHANNELS = "Zrotation Xrotation Yrotation"


def write_bvh(path: Path, motion: Motion, units: str = "m") -> None:
    """Write `motion`'s body joints as BVH at `path` (atomically), lengths in `units` ("m" or "cm")."""
    scale = UNITS[units]
    count = len(BODY_JOINT_NAMES)
    offsets = motion.offsets[:count] * scale
    children = [[c for c, p in enumerate(BODY_PARENTS) if p == j] for j in range(count)]
    lines = ["HIERARCHY"]
    order: list[int] = []  # joints as the hierarchy lists them, which is the order of a frame's channels

    def joint(j: int, depth: int) -> None:
        order.append(j)
        pad = "  " * depth
        head = "ROOT" if BODY_PARENTS[j] < 0 else "JOINT"
        offset = np.zeros(3) if BODY_PARENTS[j] < 0 else offsets[j]
        channels = f"6 Xposition Yposition Zposition {_CHANNELS}" if BODY_PARENTS[j] < 0 else f"3 {_CHANNELS}"
        lines.extend([f"{pad}{head} {BODY_JOINT_NAMES[j]}", f"{pad}{{", f"{pad}  OFFSET {_vector(offset)}"])
        lines.append(f"{pad}  CHANNELS {channels}")
        for c in children[j]:
            joint(c, depth + 1)
        if not children[j]:
            end = offsets[j] * 0.5
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {_vector(end)}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    joint(0, 0)
    rows = motion.held_frames()
    rotations = motion.rotations[rows][:, order]
    euler = Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_euler("ZXY", degrees=True)
    values = np.concatenate([motion.root[rows] * scale, euler.reshape(len(rows), count * 3)], axis=1)
    lines += ["MOTION", f"Frames: {len(rows)}", f"Frame Time: {1.0 / motion.fps:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in values]
    write_text(path, "\n".join(lines) + "\n")


def _vector(v: np.ndarray) -> str:
    return " ".join(f"{x:.6f}" for x in v)
