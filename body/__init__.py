"""Body models behind one SMPL-X-convention interface (`BodyModel`).

`create("anny")` is the embedded default (no licence-gated files);
`create("smplx", model_path=...)` loads the user's own SMPL-X files.
Importing `body` does not import torch: the torch-free tables (`body.keypoint_sets`,
`body.skeleton`) serve processes without it (the MediaPipe worker); `BodyModel`,
`BodyOutput` and `create` import it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from body.base import BodyModel
    from body.output import BodyOutput

__all__ = ["BodyModel", "BodyOutput", "create", "MODEL_NAMES"]

MODEL_NAMES = ("anny", "smplx")
SMPLX_OPTIONS = ("num_betas", "num_expression")  # extra `create` arguments SMPL-X takes


def create(
    name: str = "anny",
    model_path: str | None = None,
    gender: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    **kwargs: Any,
) -> BodyModel:
    """Build a body model: "anny" (default) or "smplx" (needs `model_path`); `dtype` None is float32.

    `gender` (None = neutral) and `kwargs` (num_betas, num_expression) are SMPL-X
    options; Anny refuses them, as it does `model_path`. Raises ValueError for an
    argument the model cannot use.
    """
    if name == "anny":
        if model_path is not None:
            raise ValueError(
                f"model_path={model_path!r}: Anny is built from the installed `anny` package "
                f"and reads no model files (model_path is for name='smplx')"
            )
        if gender not in (None, "neutral"):
            raise ValueError(
                f"gender={gender!r}: Anny has one model for everyone; its gender is the "
                f"'gender' entry of `shape` (a phenotype), so leave gender None or 'neutral'"
            )
        if kwargs:
            raise ValueError(f"Anny takes no extra arguments; got {sorted(kwargs)}")
        from body.anny_body import AnnyBody

        return AnnyBody(device=device, dtype=dtype or _float32())
    if name == "smplx":
        from body.smplx_files import check_gender, missing_model_message

        unknown = sorted(set(kwargs) - set(SMPLX_OPTIONS))
        if unknown:
            raise ValueError(f"unknown SMPL-X arguments {unknown}; SMPL-X takes {list(SMPLX_OPTIONS)}")
        gender = check_gender(gender)
        if model_path is None:
            raise FileNotFoundError(missing_model_message(None, gender))
        from body.smplx_body import SmplxBody

        return SmplxBody(model_path, gender=gender, device=device, dtype=dtype or _float32(), **kwargs)
    raise ValueError(f"unknown body model {name!r}; choose one of {MODEL_NAMES}")


def _float32() -> torch.dtype:
    import torch

    return torch.float32


def __getattr__(name: str) -> Any:
    """`BodyModel` and `BodyOutput`, imported (with torch) on first use."""
    if name == "BodyModel":
        from body.base import BodyModel

        return BodyModel
    if name == "BodyOutput":
        from body.output import BodyOutput

        return BodyOutput
    raise AttributeError(f"module 'body' has no attribute {name!r}")
