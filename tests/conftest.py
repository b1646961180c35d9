"""Shared fixtures: one Anny model per test session, a synthetic SMPL-X model, the real data folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Real photos that travel with the project (licences in its README.md).
PHOTOS = Path(__file__).resolve().parent / "data" / "people"
# Few iterations, for tests of who is fitted and where outputs go (test_fitting_fit.py checks the fits);
# four iterations leave some fits far from the keypoints, so all are accepted (rejection has its own test).
FAST_FIT = [
    "stages.camera.max_iter=4",
    "optimizer.max_iter=4",
    "schedule=[camera,body1,body5]",
    "output.max_reprojection=100",
]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full real data beside the repository (CI and developers). Every test that needs it asks
    for this fixture, which marks it `shared` (CI runs those where the folder exists)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"needs the full data folder {SHARED_DATA} (CMU / HDM05 mocap, whose terms keep it out of the repository)"
        )
    return SHARED_DATA


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: small batched ops are many times faster on one thread than
    on two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def anny_body():
    import body

    torch.manual_seed(0)
    return body.create("anny")


@pytest.fixture(scope="session")
def smplx_body(tmp_path_factory):
    """SMPL-X loaded by the real code from a synthetic file with the real keys and shapes."""
    import body
    from tests.smplx_fixture import synthetic_smplx_arrays, write_npz

    folder = tmp_path_factory.mktemp("smplx")
    write_npz(folder / "SMPLX_NEUTRAL.npz", synthetic_smplx_arrays())
    return body.create("smplx", model_path=folder)


@pytest.fixture(scope="session", params=["anny", "smplx"])
def fit_body(request):
    """Each body model in turn, for the fitting tests that must hold on both."""
    return request.getfixturevalue(f"{request.param}_body")
