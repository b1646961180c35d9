"""AMASS .npz reader (SMPL-H `poses` (T, 156) or SMPL-X `poses` (T, 165))."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from prior.data.motion import Motion, MotionFormatError

# AMASS worlds are z up; SMPL-X's is y up: (x, y, z) -> (x, z, -y).
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
_RATE_KEYS = ("mocap_framerate", "mocap_frame_rate")


def read_amass(path: str | Path, subject: str | None = None) -> Motion:
    """Read an AMASS motion; body pose is `poses[:, 3:66]` unchanged (already SMPL-X order).

    The root orientation and `trans` are turned from AMASS's z-up world to y up. SMPL(-X)
    adds `trans` after the shape-dependent pelvis offset J0, so the y-up `transl` differs
    from an exact re-expression by the constant (R - I) J0: the trajectory is right, its
    origin is not. `subject` defaults to the file's folder name (AMASS: one per subject).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise MotionFormatError(path, f"not a readable .npz ({err})") from None
    for key in ("poses", "trans"):
        if key not in arrays:
            raise MotionFormatError(path, f"no {key!r} array (an AMASS shape file, or not AMASS)")
    poses, trans = arrays["poses"], arrays["trans"]
    rate_key = next((k for k in _RATE_KEYS if k in arrays), None)
    if rate_key is None:
        raise MotionFormatError(path, f"no frame rate ({' or '.join(_RATE_KEYS)})")
    fps = float(arrays[rate_key])
    if poses.ndim != 2 or poses.shape[1] < 66 or poses.shape[0] < 1:
        raise MotionFormatError(path, f"poses must be (T, >=66), got {poses.shape}")
    if trans.shape != (poses.shape[0], 3):
        raise MotionFormatError(path, f"trans must be ({poses.shape[0]}, 3), got {trans.shape}")
    if not (np.isfinite(poses[:, :66]).all() and np.isfinite(trans).all() and fps > 0):
        raise MotionFormatError(path, "non-finite pose, translation or frame rate")
    turn = torch.tensor(Z_UP_TO_Y_UP)
    root = axis_angle_to_matrix(torch.tensor(poses[:, :3], dtype=torch.float64))
    return Motion(
        body_pose=poses[:, 3:66].reshape(-1, 21, 3).astype(np.float32),
        root_orient=matrix_to_axis_angle(turn @ root).numpy().astype(np.float32),
        transl=(trans @ Z_UP_TO_Y_UP.T).astype(np.float32),
        fps=fps,
        source="amass",
        subject=subject if subject is not None else path.parent.name,
        path=str(path),
        skeleton="amass",
    )
