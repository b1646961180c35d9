"""Every person of a frame: one scene per frame, outputs per person, people reported (few iterations)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import keypoints
from body.render import PALETTE, render_overlay
from fitting.camera import project
from fitting.config import load_config
from fitting.pipeline import run
from tests.conftest import FAST_FIT

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "basketball1.png"
FAST = FAST_FIT
SIZE = (1200, 800)
# Three people side by side at different depths (camera coordinates, m), written in this order.
PLACES = np.array([[0.0, 0.1, 6.0], [-1.6, 0.0, 4.5], [1.7, 0.2, 5.0]], np.float32)


def _bodies(model, places: np.ndarray) -> np.ndarray:
    """(N, 25, 3) BODY_25 points (x, y, confidence) of upright Anny bodies facing the camera at `places`."""
    n = len(places)
    rng = np.random.default_rng(0)
    pose = torch.as_tensor(rng.normal(0, 0.1, (n, 21, 3)), dtype=torch.float32)
    orient = torch.tensor([[math.pi, 0.0, 0.0]]).expand(n, 3)  # y up -> y down, facing the camera
    with torch.no_grad():
        out = model(global_orient=orient, body_pose=pose, transl=torch.as_tensor(places), shape=torch.zeros(n, 6))
        focal = torch.full((n, 2), 1000.0)
        xy = project(out.keypoints("body25"), focal, torch.tensor([SIZE[0] / 2, SIZE[1] / 2]).expand(n, 2))
    seen = model.points.mask("body25").numpy().astype(np.float32)
    return np.concatenate([xy.numpy() * seen[:, None], np.broadcast_to(seen[:, None], (25, 1))[None].repeat(n, 0)], -1)


@pytest.fixture(scope="module")
def openpose_folder(anny_body, tmp_path_factory) -> Path:
    """crowd: three people to fit, one with three points, one 20 px tall; solo: one person."""
    people = _bodies(anny_body, PLACES)
    incomplete = people[0].copy()
    incomplete[3:, 2] = 0
    incomplete[3:, :2] = 0
    tiny, seen = people[0].copy(), people[0, :, 2] > 0
    tiny[seen, :2] = (tiny[seen, :2] - tiny[seen, :2].min(0)) * 20 / np.ptp(tiny[seen, 1]) + 30
    folder = tmp_path_factory.mktemp("openpose")
    crowd = keypoints.Keypoints("body25", np.concatenate([people, incomplete[None], tiny[None]]))
    keypoints.write_openpose(crowd, folder / "crowd_keypoints.json")
    keypoints.write_openpose(keypoints.Keypoints("body25", people[1:2]), folder / "solo_keypoints.json")
    return folder


def test_every_person_of_an_openpose_frame_is_fitted_or_reported(tmp_path, openpose_folder):
    cfg = load_config(None, [*FAST, f"camera.image_size=[{SIZE[0]},{SIZE[1]}]", "camera.focal=1000"])
    out = tmp_path / "out"
    summary = run(openpose_folder, out, cfg, progress=False)
    crowd = [f"crowd.person_{i}" for i in range(3)]
    assert sorted(summary.fitted) == [*crowd, "solo"] and not summary.failed
    assert summary.skipped == {
        "crowd.person_3": "only 3 usable body keypoints (need 6)",
        "crowd.person_4": "too small: 20 px tall (need 32)",
    }
    saved = json.loads((out / "summary.json").read_text())
    assert saved["people"] == {
        "fitted": 4,
        "already_done": 0,
        "skipped": 2,
        "failed": 0,
        "frames": 2,
        "most_in_a_frame": 3,
    }
    # One output per person, each matched to its own body: the i-th person of the file is placed
    # where the i-th body stands (the nearest of the three in x, right in depth order).
    assert not (out / "crowd.npz").exists() and not (out / "crowd.person_3.npz").exists()
    fitted = {i: np.load(out / f"crowd.person_{i}.npz") for i in range(3)}
    for i, f in fitted.items():
        assert int(f["person_id"]) == i and f["body_pose"].shape == (21, 3)
        assert np.abs(PLACES[:, 0] - f["transl"][0]).argmin() == i
        record = json.loads(str(f["frame_people"]))
        assert record["written"] == [0, 1, 2] and set(record["skipped"]) == {"3", "4"}
    depth = [float(fitted[i]["transl"][2]) for i in range(3)]
    assert np.argsort(depth).tolist() == np.argsort(PLACES[:, 2]).tolist(), depth
    assert (out / "crowd.person_0.obj").is_file() and (out / "crowd.overlay.png").is_file()
    # A frame with one person keeps the single layout: KEY.npz, KEY.obj.
    assert (out / "solo.npz").is_file() and (out / "solo.obj").is_file() and not list(out.glob("solo.person_*"))
    assert int(np.load(out / "solo.npz")["person_id"]) == 0
    # Resume per frame: a finished frame is done, its unfitted people reported again; a frame
    # with one person's npz missing (a run killed while writing it) is fitted again, whole.
    again = run(openpose_folder, out, cfg, progress=False)
    assert sorted(again.already_done) == [*crowd, "solo"] and again.fitted == []
    assert again.skipped == summary.skipped
    (out / "crowd.person_1.npz").unlink()
    third = run(openpose_folder, out, cfg, progress=False)
    assert sorted(third.fitted) == crowd and third.already_done == ["solo"]


def test_person_largest_keeps_the_single_layout(tmp_path, openpose_folder):
    cfg = load_config(
        None, [*FAST, f"camera.image_size=[{SIZE[0]},{SIZE[1]}]", "keypoints.person=largest", "output.overlay=false"]
    )
    summary = run(openpose_folder / "crowd_keypoints.json", tmp_path / "out", cfg, progress=False)
    assert summary.fitted == ["crowd"] and not summary.skipped
    with np.load(tmp_path / "out" / "crowd.npz") as f:
        assert int(f["person_id"]) == 1  # the nearest body has the largest box
    assert not list((tmp_path / "out").glob("crowd.person_*"))


def test_basketball1_fits_both_men_in_one_scene(tmp_path):
    """The player, and the man cut off by the right edge (MoveNet's COCO-17 points, head to hips)."""
    out = tmp_path / "out"
    summary = run(DEMO, out, load_config(None, FAST), progress=False)
    assert summary.fitted == ["basketball1.png.person_0", "basketball1.png.person_1"], summary.to_dict()
    player, cut_off = (np.load(out / f"basketball1.png.person_{i}.npz") for i in range(2))
    assert "keypoints_mediapipe33" in player.files and set(k for k in cut_off.files if "keypoints_" in k) == {
        "keypoints_coco17"
    }
    assert player["transl"][0] < 0 < cut_off["transl"][0]  # left and right of the image centre
    overlay = cv2.imread(str(out / "basketball1.png.overlay.png"))
    assert overlay.shape == (480, 640, 3) and not (out / "basketball1.png.npz").exists()


def test_one_render_draws_nearer_people_over_farther_ones():
    square = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3], [0, 2, 1], [0, 3, 2]])  # both sides
    far, near = square + (0.5, 0, 5), square * 0.5 + (-0.3, 0, 3)
    assert PALETTE[0][0] < PALETTE[0][2] and PALETTE[1][0] > PALETTE[1][2]  # the first blue, the second orange
    for meshes, near_is_orange in (([far, near], True), ([near, far], False)):
        rgb = render_overlay(meshes, faces, (200.0, 200.0), (100.0, 100.0), (200, 200), alpha=1.0).astype(int)
        # the middle pixel is covered by both squares: the near one's colour, whichever was added first
        assert (rgb[100, 100, 0] > rgb[100, 100, 2]) == near_is_orange, rgb[100, 100]
        assert (rgb[100, 150, 0] > rgb[100, 150, 2]) != near_is_orange, rgb[100, 150]  # the far one only


def test_choose_all_keeps_everyone_in_order():
    body = np.zeros((3, 17, 3), np.float32)
    body[:, :, 2] = 0.9
    body[:, :, 0] = np.array([[10], [100], [300]]) + np.arange(17)
    body[:, :, 1] = np.arange(17) * np.array([[1], [5], [2]])
    kp = keypoints.Keypoints("coco17", body)
    assert kp.chosen("all") == [0, 1, 2] and kp.choose("all").num_people == 3
    assert kp.chosen("largest") == [1] and keypoints.Keypoints.empty("coco17").chosen("all") == []
