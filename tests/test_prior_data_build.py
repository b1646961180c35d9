"""Dataset builder on a small real subset: npz + manifest, subject split, skips, glitch filter."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from body.rotations import axis_angle_to_matrix, geodesic_angle
from prior.data import load_motion
from prior.data.build import build_dataset, drop_near_duplicates, main, plausible_frames, subsample
from tests.prior_data_mocap import mocap_subset


@pytest.fixture(scope="module")
def subset(shared_data: Path) -> Path:
    return mocap_subset(shared_data / "mocap")


@pytest.fixture(scope="module")
def small_mocap(subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --mocap folder: HDM05 as a .tar.xz archive, CMU BVH as a folder with a truncated file."""
    root = tmp_path_factory.mktemp("mocap")
    with tarfile.open(root / "hdm05_asfamc.tar.xz", "w:xz") as tar:
        tar.add(subset / "hdm05_asfamc", arcname="hdm05_asfamc")
    shutil.copytree(subset / "cmu_bvh", root / "cmu_bvh")
    good = (root / "cmu_bvh/salsa/10.bvh").read_text().splitlines()
    (root / "cmu_bvh/salsa/11.bvh").write_text("\n".join(good[:400]) + "\n")
    return root


def test_build_small_subset(small_mocap: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["--mocap", str(small_mocap), "--out", str(out), "--fps", "10"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "train.npz", "val.npz"]  # no temp files left
    train, val = np.load(out / "train.npz"), np.load(out / "val.npz")
    split = manifest["split"]
    assert set(split["train_subjects"]).isdisjoint(split["val_subjects"])
    assert split["val_subjects"] == ["cmu_bvh/indian", "hdm05_asfamc/bk"]
    assert split["val_subjects_missing"] == ["cmu/69", "fair/fair1"]  # default held-out actors not in this subset
    assert set(split["train_subjects"]) == {"cmu_bvh/martial", "cmu_bvh/salsa", "hdm05_asfamc/mm"}
    # Every pose's clip belongs to its split's subjects; mirrored copies only in train.
    rows = {r["clip"]: r for r in manifest["clips"]}
    for name, data in (("train", train), ("val", val)):
        assert data["body_pose"].shape[1:] == (21, 3) and data["body_pose"].dtype == np.float32
        assert {rows[c]["split"] for c in data["clips"][np.unique(data["clip"])]} == {name}
        assert manifest["counts"][name]["frames"] == len(data["body_pose"]) == len(data["frame"])
    assert val["mirrored"].sum() == 0 and train["mirrored"].sum() * 2 == len(train["mirrored"])
    # The truncated file is reported (file and line) and skipped; the rest is built.
    assert [s["file"] for s in manifest["skipped"]] == ["cmu_bvh/salsa/11.bvh"]
    assert "11.bvh:401: truncated" in manifest["skipped"][0]["error"]
    bvh, hdm = manifest["datasets"]["cmu_bvh"], manifest["datasets"]["hdm05_asfamc"]
    assert bvh["clips"] == 3 and hdm["clips"] == 4
    assert "NSF EIA-0196217" in bvh["attribution"] and hdm["licence"] == "CC BY-SA 3.0"
    salsa = rows["cmu_bvh/salsa/10.bvh"]
    assert salsa["fps"] == 60.0 and salsa["frames_source"] == 1198
    assert 0 < salsa["frames_kept"] <= 1198 // 6 + 1  # 60 -> 10 fps, then de-duplicated
    assert hdm["frames_kept"] + bvh["frames_kept"] == len(val["body_pose"]) + len(train["body_pose"]) // 2
    assert manifest["retarget_check_deg"]["hdm05_asfamc"]["p95"] < 5.0
    # Consecutive kept poses of a clip differ by at least the de-duplication threshold.
    first = train["clip"] == train["clip"][0]
    rot = axis_angle_to_matrix(torch.from_numpy(train["body_pose"][first & ~train["mirrored"]]))
    assert (torch.rad2deg(geodesic_angle(rot[1:], rot[:-1])).amax(-1) >= 5.0 - 1e-3).all()


def test_build_custom_split_and_archive_input(small_mocap: Path, tmp_path: Path) -> None:
    manifest = build_dataset(
        small_mocap / "hdm05_asfamc.tar.xz",
        tmp_path,
        fps=5,
        mirror=False,
        val_subjects=["hdm05_asfamc/mm"],
        progress=False,
    )
    assert manifest["split"]["val_subjects"] == ["hdm05_asfamc/mm"]
    assert manifest["split"]["train_subjects"] == ["hdm05_asfamc/bk"]
    assert manifest["counts"]["train"]["mirrored"] == 0


def test_subsample_and_near_duplicates(subset: Path) -> None:
    motion = load_motion(subset / "cmu_asfamc/02/02_01.amc")  # 120 fps
    sub, idx = subsample(motion, 30)
    assert sub.fps == 30 and np.array_equal(idx, np.arange(0, motion.num_frames, 4))
    assert np.array_equal(sub.body_pose, motion.body_pose[idx])
    assert subsample(sub, 60)[0] is sub  # never upsampled
    still = np.repeat(motion.body_pose[:1], 10, axis=0)
    assert list(drop_near_duplicates(still, 5.0)) == [0]
    assert len(drop_near_duplicates(motion.body_pose, 0.0)) == motion.num_frames


def test_glitch_frames_are_flagged(subset: Path) -> None:
    """HDM05 bk's depositFloorR_007 has a right knee flexed past 180 deg (rtibia up to 208):
    as axis-angle that reads as a 150 deg hyperextension, which the builder drops (along
    with a few frames whose right ankle is turned over 100 deg)."""
    path = subset / "hdm05_asfamc/bk/HDM_bk_depositFloorR_007_120.amc"
    raw = np.array(
        [float(ln.split()[1]) for ln in path.read_text(encoding="latin-1").splitlines() if ln.startswith("rtibia ")]
    )
    ok = plausible_frames(load_motion(path).body_pose)
    assert (raw > 180).sum() > 20
    assert not ok[raw > 180].any()
    assert 0.7 < ok.mean() < 0.9
