"""Real mocap for the tests, extracted from ../shared/data/mocap/*.tar.xz.

Members keep their archive layout (so `framerates.txt`, `NN/NN.asf` and
`<actor>/HDM_<actor>.asf` sit where the readers look). `mocap_subset` is a fixed
small subset extracted once per test process; `extract_actor_clips` / `actor_poses`
take some clips of one HDM05 actor into a folder the test owns.
"""

from __future__ import annotations

import atexit
import shutil
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch

SUBSET: dict[str, tuple[str, ...]] = {
    "cmu_asfamc": ("02/02.asf", "02/02_01.amc", "02/02_03.amc"),
    "cmu_bvh": ("framerates.txt", "salsa/10.bvh", "indian/13.bvh", "martial/04.bvh"),
    "hdm05_asfamc": (
        "bk/HDM_bk.asf",
        "bk/HDM_bk_depositFloorR_007_120.amc",
        "bk/HDM_bk_hopBothLegs1hops_013_120.amc",
        "mm/HDM_mm.asf",
        "mm/HDM_mm_hopBothLegs1hops_031_120.amc",
        "mm/HDM_mm_rotateArmsBothBackward1Reps_013_120.amc",
    ),
}


@lru_cache(maxsize=1)
def mocap_subset(mocap: Path) -> Path:
    """Folder with <dataset>/<member> files of SUBSET, extracted from `mocap`'s archives."""
    out = Path(tempfile.mkdtemp(prefix="prior_data_test_"))
    atexit.register(shutil.rmtree, out, True)
    for dataset, members in SUBSET.items():
        wanted = {f"{dataset}/{m}" for m in members}
        got = _extract(mocap / f"{dataset}.tar.xz", lambda ms: [m for m in ms if m.name in wanted], out)
        if len(got) != len(wanted):
            raise FileNotFoundError(f"{dataset}.tar.xz lacks {sorted(wanted - {m.name for m in got})}")
    return out


def _extract(
    archive: Path, choose: Callable[[list[tarfile.TarInfo]], list[tarfile.TarInfo]], dest: Path
) -> list[tarfile.TarInfo]:
    """Extract the members `choose` picks from the archive's files into dest; returns them."""
    with tarfile.open(archive) as tar:
        members = choose([m for m in tar.getmembers() if m.isfile()])
        tar.extractall(dest, members=members, filter="data")
    return members


def extract_actor_clips(mocap: Path, actor: str, clips: slice, dest: Path) -> Path:
    """Extract an HDM05 actor's .asf and a slice of its .amc clips (sorted by name) under dest.

    Returns dest, laid out like the archive (hdm05_asfamc/<actor>/...).
    """

    def choose(members: list[tarfile.TarInfo]) -> list[tarfile.TarInfo]:
        mine = [m for m in members if f"/{actor}/" in m.name]
        amc = sorted((m for m in mine if m.name.endswith(".amc")), key=lambda m: m.name)[clips]
        return [m for m in mine if m.name.endswith(".asf")] + amc

    _extract(mocap / "hdm05_asfamc.tar.xz", choose, dest)
    return dest


def actor_poses(mocap: Path, actor: str, clips: slice, dest: Path, fps: float = 10.0) -> torch.Tensor:
    """Body poses (N, 21, 3) of some HDM05 clips of one actor, subsampled to about `fps`."""
    from prior.data import load_motion

    folder = extract_actor_clips(mocap, actor, clips, dest) / "hdm05_asfamc" / actor
    poses = []
    for amc in sorted(folder.glob("*.amc")):
        motion = load_motion(amc)
        poses.append(motion.body_pose[:: max(1, round(motion.fps / fps))])
    return torch.from_numpy(np.concatenate(poses).astype(np.float32))
