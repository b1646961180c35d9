"""Motion readers on real mocap (the bundled BVH clips; CMU BVH and CMU / HDM05 ASF/AMC from the full
archives) and a synthetic AMASS file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from body.rotations import axis_angle_to_matrix
from prior.data import MotionFormatError, find_asf, load_motion
from prior.data.amass import Z_UP_TO_Y_UP
from prior.data.asf_amc import read_amc, read_asf
from prior.data.bvh import read_bvh
from tests.prior_data_mocap import bundled_mocap, mocap_subset


@pytest.fixture(scope="module")
def mocap(shared_data: Path) -> Path:
    """The CMU and HDM05 subset of the full archives (skips without them)."""
    return mocap_subset(shared_data / "mocap")


def _rest_height(offsets: np.ndarray, parents: list[int]) -> float:
    pos = np.zeros_like(offsets)
    for j, p in enumerate(parents):
        pos[j] = offsets[j] + (pos[p] if p >= 0 else 0)
    return float(np.ptp(pos[:, 1]))


def _amc_frames(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="latin-1").splitlines() if re.fullmatch(r"\d+", line.strip()))


def test_bvh_reader_real_files(mocap: Path) -> None:
    path = mocap / "cmu_bvh" / "salsa" / "10.bvh"
    text = path.read_text()
    src = read_bvh(path)
    real_joints = [n for n in src.names if not n.endswith("_end")]
    assert len(real_joints) == 43 == len(re.findall(r"\b(?:ROOT|JOINT)\b", text))
    assert src.num_frames == int(re.search(r"Frames:\s*(\d+)", text).group(1)) == 1198
    assert src.fps == 120.0  # what the header claims
    assert 1.4 < _rest_height(src.offsets, src.parents) < 1.9  # centimetres read as metres
    salsa = load_motion(path)
    assert salsa.fps == 60.0  # framerates.txt in the archive: salsa is really 60 fps
    assert salsa.body_pose.shape == (1198, 21, 3) and salsa.body_pose.dtype == np.float32
    assert salsa.root_orient.shape == salsa.transl.shape == (1198, 3)
    assert salsa.source == "bvh" and salsa.subject == "salsa"
    assert 0.5 < float(np.median(salsa.transl[:, 1])) < 1.1  # pelvis height, y up, metres
    indian = load_motion(mocap / "cmu_bvh" / "indian" / "13.bvh")
    assert indian.fps == 120.0 and indian.num_frames == 1996
    assert load_motion(path, fps=30).fps == 30.0


@pytest.mark.parametrize(
    "asf, amc, bones, height",
    [
        ("cmu_asfamc/02/02.asf", "cmu_asfamc/02/02_01.amc", 30, (1.4, 1.9)),
        ("hdm05_asfamc/bk/HDM_bk.asf", "hdm05_asfamc/bk/HDM_bk_depositFloorR_007_120.amc", 30, (1.5, 2.0)),
    ],
)
def test_asf_amc_reader_real_files(mocap: Path, asf: str, amc: str, bones: int, height: tuple) -> None:
    skeleton = read_asf(mocap / asf)
    assert len(skeleton.bones) == bones
    assert skeleton.degrees and skeleton.root_order == ["tx", "ty", "tz", "rx", "ry", "rz"]
    assert abs(skeleton.length_scale - 0.0254 / 0.45) < 1e-9  # `:units length 0.45`, inches
    src = read_amc(mocap / amc, skeleton)
    assert src.num_frames == _amc_frames(mocap / amc)
    assert height[0] < _rest_height(src.offsets, src.parents) < height[1]
    # One-dof bones give the hinge axes: knees about x turned 20 deg (the ASF `axis 0 0 20`).
    assert np.allclose(src.hinge_axes["ltibia"], [np.cos(np.radians(20)), np.sin(np.radians(20)), 0], atol=1e-6)
    motion = load_motion(mocap / amc)
    assert motion.fps == 120.0 and motion.num_frames == src.num_frames
    assert motion.subject == Path(amc).parent.name and motion.source == "asf_amc"
    # Feet on the floor: the lowest ankle/toe joint stays within a few cm of the ground band.
    lowest = motion.joints[:, [7, 8, 10, 11], 1].min(axis=1)
    assert np.percentile(lowest, 95) - np.percentile(lowest, 5) < 0.15


def test_find_asf(mocap: Path) -> None:
    assert find_asf(mocap / "cmu_asfamc/02/02_03.amc").name == "02.asf"
    assert find_asf(mocap / "hdm05_asfamc/mm/HDM_mm_hopBothLegs1hops_031_120.amc").name == "HDM_mm.asf"


def _write_amass(path: Path, frames: int = 7, rate_key: str = "mocap_framerate", **override) -> dict:
    rng = np.random.default_rng(0)
    data = {
        "poses": rng.normal(0, 0.3, (frames, 165)),
        "trans": rng.normal(0, 1, (frames, 3)),
        "betas": rng.normal(0, 1, 16),
        "gender": np.array("neutral"),
        rate_key: np.array(120.0),
    }
    data.update(override)
    np.savez(path, **data)
    return data


def test_amass_reader_synthetic_layout(tmp_path: Path) -> None:
    folder = tmp_path / "CMU" / "07"
    folder.mkdir(parents=True)
    data = _write_amass(folder / "07_01_poses.npz")
    motion = load_motion(folder / "07_01_poses.npz")
    assert motion.source == "amass" and motion.subject == "07" and motion.fps == 120.0
    assert np.allclose(motion.body_pose, data["poses"][:, 3:66].reshape(-1, 21, 3), atol=1e-6)
    assert motion.joints is None and motion.rest_joints is None
    turn = torch.tensor(Z_UP_TO_Y_UP)
    expected_root = turn @ axis_angle_to_matrix(torch.tensor(data["poses"][:, :3]))
    assert torch.allclose(
        axis_angle_to_matrix(torch.tensor(motion.root_orient, dtype=torch.float64)), expected_root, atol=1e-5
    )
    assert np.allclose(motion.transl[:, 1], data["trans"][:, 2], atol=1e-6)  # AMASS z up -> y up
    # SMPL-X AMASS files name the rate mocap_frame_rate; SMPL-H files have 156 pose columns.
    _write_amass(folder / "x.npz", rate_key="mocap_frame_rate", poses=np.zeros((7, 156)))
    assert load_motion(folder / "x.npz").body_pose.shape == (7, 21, 3)


def test_amass_reader_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "shape.npz", betas=np.zeros(16), gender=np.array("male"))
    with pytest.raises(MotionFormatError, match=r"shape\.npz.*'poses'"):
        load_motion(tmp_path / "shape.npz")
    _write_amass(tmp_path / "good.npz", frames=50)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "good.npz").read_bytes()[:900])
    with pytest.raises(MotionFormatError, match=r"cut\.npz"):
        load_motion(tmp_path / "cut.npz")


def _cut_lines(src: Path, dst: Path, keep: int) -> None:
    dst.write_text("\n".join(src.read_text(encoding="latin-1").splitlines()[:keep]) + "\n", encoding="latin-1")


def test_corrupt_bvh_names_file_and_line(tmp_path: Path) -> None:
    src = bundled_mocap() / "snu_martial_bvh/snu_martial_arts/s_005_3_1.bvh"  # 22 joints, 469 frames
    lines = src.read_text().splitlines()
    motion_line = lines.index("MOTION") + 1  # 1-based
    bad = tmp_path / "truncated.bvh"
    _cut_lines(src, bad, motion_line + 102)  # header + 100 of 469 frames
    with pytest.raises(MotionFormatError, match=rf"truncated\.bvh:{len(lines[: motion_line + 102]) + 1}: truncated"):
        load_motion(bad)
    cut_mid_line = tmp_path / "cut.bvh"
    cut_mid_line.write_text("\n".join(lines[: motion_line + 50]) + "\n" + lines[motion_line + 50][:40])
    with pytest.raises(MotionFormatError, match=rf"cut\.bvh:{motion_line + 51}: frame 49: expected 69 values"):
        load_motion(cut_mid_line)
    garbled = tmp_path / "garbled.bvh"
    row = lines[motion_line + 10].split()
    row[5] = "1.2.3"
    garbled.write_text("\n".join(lines[: motion_line + 10] + [" ".join(row)] + lines[motion_line + 11 :]) + "\n")
    with pytest.raises(MotionFormatError, match=rf"garbled\.bvh:{motion_line + 11}: frame 9: non-numeric"):
        load_motion(garbled)
    header_only = tmp_path / "header.bvh"
    _cut_lines(src, header_only, 40)
    with pytest.raises(MotionFormatError, match=r"header\.bvh:40: no MOTION section"):
        load_motion(header_only)
    bad_hierarchy = tmp_path / "hier.bvh"
    assert lines[8].split()[0] == "CHANNELS"  # the spine's
    bad_hierarchy.write_text("\n".join(lines[:8] + ["  CHANNELS 3 Zrotation Wrotation Yrotation"] + lines[9:]))
    with pytest.raises(MotionFormatError, match=r"hier\.bvh:9: unknown channel 'wrotation'"):
        read_bvh(bad_hierarchy)


def test_corrupt_asf_amc_names_file_and_line(mocap: Path, tmp_path: Path) -> None:
    folder = tmp_path / "02"
    folder.mkdir()
    shutil.copy(mocap / "cmu_asfamc/02/02.asf", folder)
    src_lines = (mocap / "cmu_asfamc/02/02_03.amc").read_text(encoding="latin-1").splitlines()
    # Truncated inside frame 20: the error points at the frame's number line.
    frame20 = src_lines.index("20") + 1
    _cut_lines(mocap / "cmu_asfamc/02/02_03.amc", folder / "02_90.amc", frame20 + 10)
    with pytest.raises(MotionFormatError, match=rf"02_90\.amc:{frame20}: frame starting here lacks .*truncated"):
        load_motion(folder / "02_90.amc")
    garbled = list(src_lines)
    garbled[frame20 + 3] = garbled[frame20 + 3].split()[0] + " 1.0 nan? 3"
    (folder / "02_91.amc").write_text("\n".join(garbled) + "\n")
    with pytest.raises(MotionFormatError, match=rf"02_91\.amc:{frame20 + 4}: "):
        load_motion(folder / "02_91.amc")
    unknown = list(src_lines)
    unknown[frame20 + 2] = "tail 1 2 3"
    (folder / "02_92.amc").write_text("\n".join(unknown) + "\n")
    with pytest.raises(MotionFormatError, match=rf"02_92\.amc:{frame20 + 3}: unknown bone 'tail'"):
        load_motion(folder / "02_92.amc")
    asf_lines = (folder / "02.asf").read_text().splitlines()
    cut_asf = tmp_path / "cut.asf"
    cut_asf.write_text("\n".join(asf_lines[:60]) + "\n")
    with pytest.raises(MotionFormatError, match=r"cut\.asf"):
        read_asf(cut_asf)
    with pytest.raises(MotionFormatError, match=r"an \.asf holds a skeleton"):
        load_motion(folder / "02.asf")
    with pytest.raises(MotionFormatError, match=r"unknown motion format '\.txt'"):
        (tmp_path / "notes.txt").write_text("x")
        load_motion(tmp_path / "notes.txt")
