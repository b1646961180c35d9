"""Shared fixtures: one Anny model per test session, the real data folder."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it ships beside the repository, not in it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def anny_body():
    import body

    torch.manual_seed(0)
    return body.create("anny")
