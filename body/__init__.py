"""Body models behind one SMPL-X-convention interface.

`create("anny")` is the embedded default (no licence-gated files);
`create("smplx", model_path=...)` loads the user's own SMPL-X files.
"""
from __future__ import annotations

import torch

from body.output import BodyOutput

__all__ = ["BodyOutput", "create", "MODEL_NAMES"]

MODEL_NAMES = ("anny", "smplx")


def create(
    name: str = "anny",
    model_path: str | None = None,
    gender: str = "neutral",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    **kwargs,
) -> torch.nn.Module:
    """Build a body model: "anny" (default) or "smplx" (needs `model_path`)."""
    if name == "anny":
        from body.anny_body import AnnyBody

        return AnnyBody(device=device, dtype=dtype)
    if name == "smplx":
        from body.smplx_body import SmplxBody

        if model_path is None:
            from body.smplx_files import missing_model_message

            raise FileNotFoundError(missing_model_message(None, gender))
        return SmplxBody(model_path, gender=gender, device=device, dtype=dtype, **kwargs)
    raise ValueError(f"unknown body model {name!r}; choose one of {MODEL_NAMES}")
