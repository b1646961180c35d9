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

__all__ = ["BodyModel", "BodyOutput", "create", "usable_device", "MODEL_NAMES"]

MODEL_NAMES = ("anny", "smplx")
SMPLX_OPTIONS = ("num_betas", "num_expression")  # extra `create` arguments SMPL-X takes


def usable_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device; ValueError, in one line, when it names a CUDA GPU torch cannot see."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return device
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ValueError(f"device={device} but torch sees no CUDA GPU ({_cuda_build()}); use device=cpu")
    if device.index is not None and device.index >= count:
        raise ValueError(f"device={device} but torch sees {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    return device


def _cuda_build() -> str:
    """Which CUDA this torch was built for, for the error above."""
    import torch

    return (
        f"torch {torch.__version__}, CUDA {torch.version.cuda}"
        if torch.version.cuda
        else f"torch {torch.__version__} is a CPU-only build"
    )


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
    argument the model cannot use, or a CUDA device torch cannot see (`usable_device`).
    """
    device = usable_device(device)
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
