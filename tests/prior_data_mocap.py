"""A small real-mocap subset for the prior.data tests, extracted once per test process.

The members come from ../shared/data/mocap/*.tar.xz, keep their archive layout (so
`framerates.txt`, `NN/NN.asf` and `<actor>/HDM_<actor>.asf` sit where the readers look)
and are deleted when the process exits.
"""
from __future__ import annotations

import atexit
import shutil
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path

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
        with tarfile.open(mocap / f"{dataset}.tar.xz") as tar:
            for member in tar:
                if member.name in wanted:
                    tar.extract(member, out, filter="data")
                    wanted.discard(member.name)
                    if not wanted:
                        break
        if wanted:
            raise FileNotFoundError(f"{dataset}.tar.xz lacks {sorted(wanted)}")
    return out
