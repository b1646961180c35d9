"""Finding and safely reading users' SMPL-X model files (.npz, or .pkl with a restricted unpickler).

No arbitrary pickle code runs: .npz files are read with `allow_pickle=False`,
and .pkl files go through `RestrictedUnpickler`, which rebuilds numpy arrays,
scipy sparse matrices and chumpy arrays (as plain arrays) and refuses every
other global.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

SMPLX_URL = "https://smpl-x.is.tue.mpg.de"
GENDERS = ("neutral", "male", "female")
# Keys read from a model file; the others (joint2num, part2num, ...) are ignored.
REQUIRED_KEYS = ("v_template", "f", "J_regressor", "kintree_table", "weights", "shapedirs", "posedirs")
OPTIONAL_KEYS = ("lmk_faces_idx", "lmk_bary_coords", "dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords")


class ModelFileError(ValueError):
    """A body-model file that cannot be used; the message names the file and the fix."""


def check_gender(gender: str | None) -> str:
    """The SMPL-X gender to load: None means "neutral"; anything outside GENDERS is refused."""
    if gender is None:
        return "neutral"
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS} (or None for neutral), got {gender!r}")
    return gender


def expected_names(gender: str) -> list[str]:
    stem = f"SMPLX_{gender.upper()}"
    return [f"{stem}.npz", f"{stem}.pkl"]


def missing_model_message(model_path: str | Path | None, gender: str) -> str:
    where = "no model_path was given" if model_path is None else f"nothing usable at {model_path}"
    return (
        f"SMPL-X model files not found ({where}). Expected one of {expected_names(gender)} "
        f"(or a folder holding them, optionally in a 'smplx/' subfolder). SMPL-X is licence-gated: "
        f"register and download the model at {SMPLX_URL}, then pass --model-path / model_path. "
        f"Without them, use the default open body model: body.create('anny')."
    )


def find_model_file(model_path: str | Path, gender: str = "neutral") -> Path:
    """Resolve a file or a folder to the SMPL-X model file for `gender` (npz preferred)."""
    gender = check_gender(gender)
    path = Path(model_path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for folder in (path, path / "smplx"):
            for name in expected_names(gender):
                if (folder / name).is_file():
                    return folder / name
    raise FileNotFoundError(missing_model_message(model_path, gender))


class _Stub:
    """Stand-in for a chumpy or scipy.sparse object: keeps the pickled state, runs no code."""

    def __setstate__(self, state) -> None:
        self.state = state


def _reconstruct_stub(cls, base, state):  # copyreg._reconstructor's signature
    if not (isinstance(cls, type) and issubclass(cls, _Stub)):
        raise pickle.UnpicklingError("refused object reconstruction of a non-allowed class")
    return cls()


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that allows numpy arrays and stand-ins for chumpy/scipy.sparse only."""

    _NUMPY = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._NUMPY:
            import importlib

            return getattr(importlib.import_module(module.replace("numpy.core", "numpy._core")), name)
        if module == "copyreg" and name == "_reconstructor":
            return _reconstruct_stub
        if module == "builtins" and name == "object":
            return object
        if module == "_codecs" and name == "encode":  # how protocol-2 pickles from Python 3 store bytes
            import codecs

            return codecs.encode
        if module.split(".")[0] in ("chumpy", "scipy"):
            return type(f"{module}.{name}", (_Stub,), {"kind": f"{module}.{name}"})
        raise pickle.UnpicklingError(f"refused to load global '{module}.{name}' (not a numpy/chumpy/scipy array)")


def _to_array(value, key: str, path: Path):
    """Turn a stand-in object into a numpy array; arrays pass through."""
    if not isinstance(value, _Stub):
        return value
    state = getattr(value, "state", None) or {}
    if "x" in state:  # chumpy.Ch keeps its value in 'x'
        return np.asarray(state["x"])
    if {"data", "indices", "indptr"} <= set(state):  # scipy CSC/CSR matrix
        shape = state.get("_shape", state.get("shape"))
        from scipy import sparse

        cls = sparse.csr_matrix if "csr" in value.kind else sparse.csc_matrix
        return cls((state["data"], state["indices"], state["indptr"]), shape=shape).toarray()
    raise ModelFileError(
        f"{path}: key '{key}' holds an unsupported pickled object ({value.kind}); "
        f"convert the model to .npz or use the .npz release from {SMPLX_URL}"
    )


def load_model_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read the arrays of an SMPL-X model file (.npz or .pkl) without running pickled code."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                data = {k: npz[k] for k in REQUIRED_KEYS + OPTIONAL_KEYS if k in npz.files}
        elif path.suffix == ".pkl":
            with open(path, "rb") as fh:
                raw = RestrictedUnpickler(fh, encoding="latin1").load()
            if not isinstance(raw, dict):
                raise ModelFileError(f"{path}: expected a dict of arrays, got {type(raw).__name__}")
            data = {k: _to_array(raw[k], k, path) for k in REQUIRED_KEYS + OPTIONAL_KEYS if k in raw}
        else:
            raise ModelFileError(f"{path}: unknown model file type; expected .npz or .pkl")
    except ModelFileError:
        raise
    except Exception as err:  # any malformed file: name it and say what to do
        raise ModelFileError(f"{path}: cannot read SMPL-X model file ({err}); re-download it from {SMPLX_URL}") from err
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ModelFileError(f"{path}: missing keys {missing}; is this an SMPL-X model file? Get one from {SMPLX_URL}")
    return {k: np.asarray(v) for k, v in data.items()}
