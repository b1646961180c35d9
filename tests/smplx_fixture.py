"""A synthetic SMPL-X model file: the real key names and array shapes, random values.

Real SMPL-X files are licence-gated, so tests build this instead and run the
real loading code on it. Geometry is made meaningful where tests rely on it:
each joint regresses from a few vertices around a T-pose skeleton, and every
vertex is skinned to the joint it sits at.
"""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
from scipy import sparse

from body.skeleton import SMPLX_JOINT_NAMES

V, F, J = 10475, 20908, 55
PARENTS = (
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15]
    + [20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38]
    + [21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53]
)


def synthetic_smplx_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    joints = np.zeros((J, 3))
    step = {"left": np.array([0.1, 0, 0]), "right": np.array([-0.1, 0, 0])}
    for j in range(1, J):
        name = SMPLX_JOINT_NAMES[j]
        side = "left" if name.startswith("left") else "right" if name.startswith("right") else None
        if any(k in name for k in ("hip", "knee", "ankle", "foot")):
            d = np.array([0.0, -0.4, 0.0]) + (step[side] if "hip" in name else 0)
        elif side:
            d = step[side] * (1.5 if "shoulder" in name or "elbow" in name or "wrist" in name else 0.2)
        else:
            d = np.array([0.0, 0.15, 0.0])
        joints[j] = joints[PARENTS[j]] + d
    owner = rng.integers(0, J, V)
    v_template = joints[owner] + rng.normal(0, 0.01, (V, 3))
    weights = np.zeros((V, J))
    weights[np.arange(V), owner] = 1.0
    regressor = np.zeros((J, V))
    for j in range(J):
        idx = np.flatnonzero(owner == j)[:5]
        regressor[j, idx] = 1.0 / len(idx)
    return {
        "v_template": v_template,
        "f": rng.integers(0, V, (F, 3)).astype(np.uint32),
        "J_regressor": regressor,
        "kintree_table": np.stack([np.array(PARENTS) % (2**32), np.arange(J)]).astype(np.int64),
        "weights": weights,
        "shapedirs": rng.normal(0, 0.001, (V, 3, 20)),
        "posedirs": rng.normal(0, 1e-4, (V, 3, 486)),
        "lmk_faces_idx": rng.integers(0, F, 51),
        "lmk_bary_coords": rng.dirichlet(np.ones(3), 51),
        "dynamic_lmk_faces_idx": rng.integers(0, F, (79, 17)),
        "dynamic_lmk_bary_coords": rng.dirichlet(np.ones(3), (79, 17)),
        "hands_componentsl": rng.normal(size=(45, 45)),
        "hands_meanl": rng.normal(size=45),
        "hands_componentsr": rng.normal(size=(45, 45)),
        "hands_meanr": rng.normal(size=45),
    }


def write_npz(path, arrays: dict[str, np.ndarray]) -> None:
    np.savez(path, **arrays)


def write_pkl_like_official(path, arrays: dict[str, np.ndarray]) -> None:
    """Pickle as the official files do: a chumpy array and a scipy CSC J_regressor."""
    module = types.ModuleType("chumpy.ch")

    class Ch:  # minimal stand-in that pickles like chumpy.ch.Ch (state dict with 'x')
        def __init__(self, x):
            self.x = x

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = Ch
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), module
    try:
        data = dict(arrays)
        data["shapedirs"] = Ch(arrays["shapedirs"])
        data["J_regressor"] = sparse.csc_matrix(arrays["J_regressor"])
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
