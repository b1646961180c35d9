"""Dataset builder on the bundled real clips: npz + manifest, subject split, skips, glitch filter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from body.rotations import axis_angle_to_matrix, geodesic_angle
from prior.data import load_motion
from prior.data.build import build_dataset, drop_near_duplicates, main, plausible_frames, subsample
from tests.mocap_bundle import BUNDLED_MOCAP
from tests.prior_data_mocap import bundled_mocap, mocap_subset


@pytest.fixture(scope="module")
def small_mocap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --mocap folder: the bundled SNU martial arts as a .tar.xz archive, FAIR as a folder with a
    truncated file."""
    root = tmp_path_factory.mktemp("mocap")
    shutil.copy(BUNDLED_MOCAP / "snu_martial_bvh.tar.xz", root)
    shutil.copytree(bundled_mocap() / "fair_bvh", root / "fair_bvh")
    good = (root / "fair_bvh/fair1_dab.bvh").read_text().splitlines()
    (root / "fair_bvh/fair1_cut.bvh").write_text("\n".join(good[:400]) + "\n")
    return root


def test_build_small_subset(small_mocap: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["--mocap", str(small_mocap), "--out", str(out), "--fps", "10"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "train.npz", "val.npz"]  # no temp files left
    train, val = np.load(out / "train.npz"), np.load(out / "val.npz")
    split = manifest["split"]
    assert set(split["train_subjects"]).isdisjoint(split["val_subjects"])
    assert split["val_subjects"] == ["fair/fair1"]
    # default held-out actors not in this subset
    assert split["val_subjects_missing"] == ["cmu/69", "cmu_bvh/indian", "hdm05_asfamc/bk"]
    assert set(split["train_subjects"]) == {f"snu_martial/p{i}" for i in (1, 2, 3)}
    # Every pose's clip belongs to its split's subjects; mirrored copies only in train.
    rows = {r["clip"]: r for r in manifest["clips"]}
    for name, data in (("train", train), ("val", val)):
        assert data["body_pose"].shape[1:] == (21, 3) and data["body_pose"].dtype == np.float32
        assert {rows[c]["split"] for c in data["clips"][np.unique(data["clip"])]} == {name}
        assert manifest["counts"][name]["frames"] == len(data["body_pose"]) == len(data["frame"])
    assert val["mirrored"].sum() == 0 and train["mirrored"].sum() * 2 == len(train["mirrored"])
    # The truncated file is reported (file and line) and skipped; the rest is built.
    assert [s["file"] for s in manifest["skipped"]] == ["fair_bvh/fair1_cut.bvh"]
    assert "fair1_cut.bvh:401: truncated" in manifest["skipped"][0]["error"]
    fair, martial = manifest["datasets"]["fair_bvh"], manifest["datasets"]["snu_martial_bvh"]
    assert fair["clips"] == 4 and martial["clips"] == 7
    assert fair["licence"].startswith("MIT") and martial["licence"].startswith("BSD-3-Clause")
    assert "AnimatedDrawings" in fair["attribution"] and "SNU Motion Database" in martial["attribution"]
    dab = rows["fair_bvh/fair1_dab.bvh"]
    assert dab["fps"] == pytest.approx(30.0, rel=1e-4) and dab["frames_source"] == 339
    assert 0 < dab["frames_kept"] <= 339 // 3 + 1  # 30 -> 10 fps, then de-duplicated
    assert fair["frames_kept"] + martial["frames_kept"] == len(val["body_pose"]) + len(train["body_pose"]) // 2
    assert manifest["retarget_check_deg"]["snu_martial_bvh"]["p95"] < 5.0
    # Consecutive kept poses of a clip differ by at least the de-duplication threshold.
    first = train["clip"] == train["clip"][0]
    rot = axis_angle_to_matrix(torch.from_numpy(train["body_pose"][first & ~train["mirrored"]]))
    assert (torch.rad2deg(geodesic_angle(rot[1:], rot[:-1])).amax(-1) >= 5.0 - 1e-3).all()


def test_build_custom_split_and_archive_input(small_mocap: Path, tmp_path: Path) -> None:
    manifest = build_dataset(
        small_mocap / "snu_martial_bvh.tar.xz",
        tmp_path,
        fps=5,
        mirror=False,
        val_subjects=["snu_martial/p2"],
        progress=False,
    )
    assert manifest["split"]["val_subjects"] == ["snu_martial/p2"]
    assert manifest["split"]["train_subjects"] == ["snu_martial/p1", "snu_martial/p3"]
    assert manifest["counts"]["train"]["mirrored"] == 0


def test_subsample_and_near_duplicates() -> None:
    motion = load_motion(bundled_mocap() / "snu_martial_bvh/snu_martial_arts/s_001_3_1.bvh")  # 30 fps
    sub, idx = subsample(motion, 10)
    assert sub.fps == pytest.approx(10) and np.array_equal(idx, np.arange(0, motion.num_frames, 3))
    assert np.array_equal(sub.body_pose, motion.body_pose[idx])
    assert subsample(sub, 60)[0] is sub  # never upsampled
    still = np.repeat(motion.body_pose[:1], 10, axis=0)
    assert list(drop_near_duplicates(still, 5.0)) == [0]
    assert len(drop_near_duplicates(motion.body_pose, 0.0)) == motion.num_frames


def test_glitch_frames_are_flagged(shared_data: Path) -> None:
    """HDM05 bk's depositFloorR_007 has a right knee flexed past 180 deg (rtibia up to 208):
    as axis-angle that reads as a 150 deg hyperextension, which the builder drops (along
    with a few frames whose right ankle is turned over 100 deg)."""
    path = mocap_subset(shared_data / "mocap") / "hdm05_asfamc/bk/HDM_bk_depositFloorR_007_120.amc"
    raw = np.array(
        [float(ln.split()[1]) for ln in path.read_text(encoding="latin-1").splitlines() if ln.startswith("rtibia ")]
    )
    ok = plausible_frames(load_motion(path).body_pose)
    assert (raw > 180).sum() > 20
    assert not ok[raw > 180].any()
    assert 0.7 < ok.mean() < 0.9
