"""Real mocap for the tests: the bundled clips (`tests.mocap_bundle`, always present) and the
full archives in ../shared/data/mocap (CI and developers only).

Members keep their archive layout (so `framerates.txt`, `NN/NN.asf` and
`<actor>/HDM_<actor>.asf` sit where the readers look). `bundled_mocap` is the bundle
extracted once per test process; `held_out_poses` the poses of its held-out actor
(FAIR's fair1, a validation actor of the shipped VPoser and initialiser); `training_clips`
copies clips of its training actors into a folder the test owns. `mocap_subset` is a fixed
small subset of the full CMU and HDM05 archives. `skeleton_clip` extracts one short real clip
per source skeleton (`SKELETON_CLIPS`, long ones cut to a few hundred frames; `BUNDLED_CLIPS`
are those in the bundle); `hinge_stats` measures how well knees and elbows bend about their
SMPL-X hinge.
"""

from __future__ import annotations

import atexit
import shutil
import tarfile
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pytest
import torch

from tests.conftest import SHARED_DATA
from tests.mocap_bundle import BUNDLE, BUNDLED_MOCAP, first_frames

SHARED_MOCAP = SHARED_DATA / "mocap"

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


@lru_cache(maxsize=1)
def bundled_mocap() -> Path:
    """The bundled archives (`tests/data/mocap`) extracted once per test process, archive layout."""
    out = Path(tempfile.mkdtemp(prefix="bundled_mocap_"))
    atexit.register(shutil.rmtree, out, True)
    for archive in sorted(BUNDLED_MOCAP.glob("*.tar.xz")):
        _extract(archive, lambda ms: ms, out)
    return out


HELD_OUT_ACTOR = "fair/fair1"  # a validation actor of the shipped VPoser and initialiser
HELD_OUT_CLIPS = tuple(f"fair_bvh/fair1_{m}.bvh" for m in ("dab", "jumping", "wave_hello", "zombie"))
# Clips of the bundle's training actors snu_martial/p1 and p2 (22-joint BVH, 30 fps).
TRAINING_CLIPS = tuple(f"snu_martial_bvh/snu_martial_arts/s_00{t}.bvh" for t in ("1_3_1", "1_3_2", "5_3_1"))


@lru_cache(maxsize=4)
def held_out_poses(fps: float = 10.0) -> torch.Tensor:
    """Body poses (N, 21, 3) of the held-out actor's bundled clips, subsampled to about `fps`."""
    from prior.data import load_motion

    poses = []
    for clip in HELD_OUT_CLIPS:
        motion = load_motion(bundled_mocap() / clip)
        poses.append(motion.body_pose[:: max(1, round(motion.fps / fps))])
    return torch.from_numpy(np.concatenate(poses).astype(np.float32))


def training_mocap(dest: Path, held_out: int = 1) -> Path:
    """A mocap folder under dest (archive layout) with the training actors' clips and the first
    `held_out` clips of the held-out actor; returns dest."""
    for clip in TRAINING_CLIPS + HELD_OUT_CLIPS[:held_out]:
        (dest / clip).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(bundled_mocap() / clip, dest / clip)
    return dest


# One short clip per source skeleton: name -> (archive, members (the motion file last), frames
# kept or None). Members near the start of their archive, so extraction can stop early.
SKELETON_CLIPS: dict[str, tuple[str, tuple[str, ...], int | None]] = {
    # SNU woody, 20 joints: HEad, LeftShoulder1, right hip branch first, 24 fps, centimetres.
    "snu_woody": ("snu_woody2_bvh", ("Walking_rawmotion/woddy2_walk_straight_slow.bvh",), 400),
    # The same skeleton with `Head`, the left hip branch first (woody2 Physics2).
    "snu_woody_left_first": ("snu_woody2_bvh", ("woody2_Physics2/wd2_WalkSameSame05.bvh",), None),
    # 26 joints: zero-offset *Dummy joints, inches, the root's height an arbitrary per-file offset.
    "snu_woody_26": ("snu_woody2_bvh", ("woody2_Samsung/wd2_tt_cut_strock_1.bvh",), 400),
    # SNU 22 joints, rest offsets along +x (basketball; starts with a held calibration T-pose).
    "snu_22": ("snu_basketball_bvh", ("snu_basketball/s_010_4_2.bvh",), 450),
    # SNU 22 joints with the arms listed before neck and head (martial arts).
    "snu_22_arms_first": ("snu_martial_bvh", ("snu_martial_arts/s_005_3_1.bvh",), None),
    # CMU MotionBuilder-style 31 joints, CMU units, an inserted T-pose first frame, 120 fps.
    "cmu_mb": ("cmu_mbstyle_bvh", ("07/07_01.bvh",), None),
    # CMU 3ds Max-style 31 joints, arms down at rest, mixed channel orders, 120 fps.
    "cmu_max": ("cmu_maxstyle_bvh", ("131/131_01.bvh",), 500),
    # CMU BVH with the ASF's bone names (hip, lhipjoint, lfemur, ...), 30 fps.
    "cmu_asf_bvh": ("cmu_daz_more_bvh", ("16/16_01.bvh",), None),
    # FAIR 27 joints, z up, XYZ channels, arbitrary units, 119.88 fps.
    "fair": ("fair_bvh", ("fair1_jumping.bvh",), None),
    # CMU gait ASF/AMC, trimmed: the first frame is numbered 10.
    "cmu_gait": ("cmu_gait_asfamc", ("16/16.asf", "16/16_15.amc"), None),
}


def extract_members(archive: Path, wanted: set[str], dest: Path) -> None:
    """Extract the named members of a tar archive under dest, reading it only as far as needed."""
    missing = set(wanted)
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.name in missing:
                tar.extract(member, dest, filter="data")
                missing.discard(member.name)
                if not missing:
                    return
    raise FileNotFoundError(f"{archive.name} lacks {sorted(missing)}")


BUNDLED_CLIPS = tuple(
    name for name, (archive, members, _) in SKELETON_CLIPS.items() if set(members) <= set(BUNDLE.get(archive, ()))
)
# The clips a test may use here: the bundled ones, and all when the full archives are present.
AVAILABLE_CLIPS = tuple(SKELETON_CLIPS) if SHARED_MOCAP.is_dir() else BUNDLED_CLIPS


def data_params(names: Iterable[str], bundled: Iterable[str]) -> list:
    """Test parameters for `names`, those not in `bundled` marked `shared` (they read ../shared)."""
    bundled = set(bundled)
    return [name if name in bundled else pytest.param(name, marks=pytest.mark.shared) for name in names]


def skeleton_clip(name: str, dest: Path) -> Path:
    """Extract SKELETON_CLIPS[name] under dest (archive layout), from the bundle when it holds the
    clip, else from the full archives, and return its motion file."""
    archive, members, frames = SKELETON_CLIPS[name]
    mocap = BUNDLED_MOCAP if name in BUNDLED_CLIPS else SHARED_MOCAP
    extract_members(mocap / f"{archive}.tar.xz", {f"{archive}/{m}" for m in members}, dest)
    path = dest / archive / members[-1]
    if frames is not None:
        path.write_text(first_frames(path.read_text(encoding="latin-1"), frames), encoding="latin-1")
    return path


# SMPL-X flexion of knees and elbows: (joint, axis index, sign of the flexion axis).
HINGES = (("left_knee", 0, 1), ("right_knee", 0, 1), ("left_elbow", 1, -1), ("right_elbow", 1, 1))


def hinge_stats(body_pose: np.ndarray, min_deg: float = 20.0) -> dict[str, dict[str, float]]:
    """Per knee and elbow, over frames bent by more than `min_deg`: how many (n), the mean and
    5th percentile of |rotation axis . SMPL-X hinge axis| (share, p5) and the fraction bending
    the natural way (flexion)."""
    from body.skeleton import BODY_JOINT_NAMES

    out = {}
    for joint, axis, sign in HINGES:
        aa = body_pose[:, BODY_JOINT_NAMES.index(joint) - 1]
        angle = np.linalg.norm(aa, axis=-1)
        bent = angle > np.radians(min_deg)
        unit = aa[bent] / angle[bent, None]
        share = np.abs(unit[:, axis]) if bent.any() else np.zeros(1)
        out[joint] = {
            "n": int(bent.sum()),
            "share": float(share.mean()),
            "p5": float(np.percentile(share, 5)),
            "flexion": float((np.sign(unit[:, axis]) == sign).mean()) if bent.any() else 0.0,
        }
    return out
