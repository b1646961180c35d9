"""Real MediaPipe on the real images in ../shared/data/images: detection,
people search, video tracking, bad inputs, the CLI, and no network."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from body.keypoint_sets import COCO17, FACE68, MEDIAPIPE33
from keypoints import KeypointsError, MediaPipeDetector, convert, read_frames, read_openpose, track
from tests.conftest import PHOTOS

REPO = Path(__file__).resolve().parents[1]
IMAGES = PHOTOS
# The man on the left of basketball1.png, head to toe (checked on the image).
LEFT_MAN_BOX = (25, 70, 180, 480)


@pytest.fixture(scope="module")
def detector():
    with MediaPipeDetector(holistic=True) as d:
        yield d


@pytest.fixture(scope="module")
def basketball1(detector):
    return detector(IMAGES / "basketball1.png")


def _image():
    return cv2.imread(str(IMAGES / "basketball1.png"))


def _paste(canvas, image, scale, x, y):
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return canvas


def _coco(kp):
    return dict(zip(COCO17, convert(kp, "coco17").body[0]))


def test_left_man_body(basketball1):
    assert basketball1.body_set == "mediapipe33" and basketball1.image_size == (640, 480)
    assert basketball1.source.endswith("basketball1.png")
    man = basketball1.choose(LEFT_MAN_BOX)
    pts = _coco(man)
    x0, y0, x1, y1 = LEFT_MAN_BOX
    for name, (x, y, c) in pts.items():
        assert c > 0.5 and x0 <= x <= x1 and y0 <= y <= y1, name
    for side in ("left", "right"):
        assert pts[f"{side}_ankle"][1] > pts[f"{side}_knee"][1] > pts[f"{side}_hip"][1] > pts[f"{side}_shoulder"][1]
    # He faces the camera: his left side is on the image's right.
    for joint in ("shoulder", "hip", "knee", "ankle", "eye", "ear"):
        assert pts[f"left_{joint}"][0] > pts[f"right_{joint}"][0], joint


def test_hands_and_face_are_the_subjects(basketball1):
    man = basketball1.choose(LEFT_MAN_BOX)
    pose = dict(zip(MEDIAPIPE33, man.body[0]))
    # His right hand (crossing his chest to the ball) is visible; the left is behind the ball.
    hand = man.right_hand[0]
    assert hand[:, 2].min() > 0.5
    wrist = hand[0, :2]
    assert np.linalg.norm(wrist - pose["right_wrist"][:2]) < 10
    assert np.linalg.norm(wrist - pose["right_wrist"][:2]) < np.linalg.norm(wrist - pose["left_wrist"][:2])
    face = dict(zip(FACE68, man.face[0]))
    assert face["face30"][2] > 0.5 and np.linalg.norm(face["face30"][:2] - pose["nose"][:2]) < 10
    right_eye = man.face[0, 36:42, :2].mean(0)
    assert np.linalg.norm(right_eye - pose["right_eye"][:2]) < np.linalg.norm(right_eye - pose["left_eye"][:2])


def test_arrays_rgb_grey_and_determinism(detector, basketball1):
    bgr = _image()
    again = detector(bgr)
    np.testing.assert_allclose(again.body, basketball1.body, atol=1e-4)
    np.testing.assert_allclose(again.face, basketball1.face, atol=1e-4)  # static mode keeps no state
    rgb = detector(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), color="rgb")
    np.testing.assert_allclose(rgb.body, basketball1.body, atol=1e-4)
    grey = detector(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert grey.num_people >= 1
    with pytest.raises(KeypointsError, match="8-bit"):
        detector(bgr.astype(np.float32))


def test_nobody_gives_empty_keypoints(detector):
    kp = detector(np.full((240, 320, 3), 90, np.uint8))
    assert kp.num_people == 0 and kp.body.shape == (0, 33, 3)
    assert kp.left_hand.shape == (0, 21, 3) and kp.face.shape == (0, 68, 3)


def test_small_person_found_by_crop(detector):
    canvas = _paste(np.full((960, 1280, 3), 128, np.uint8), _image(), 0.3, 300, 500)  # man ~110 px tall
    with MediaPipeDetector(holistic=False, find_people=False) as whole_image_only:
        assert whole_image_only(canvas).num_people == 0
    kp = detector(canvas)
    assert kp.origins.count("blazepose") == 1  # the man on the left (the one seen from behind: MoveNet's points)
    ref = dict(zip(MEDIAPIPE33, detector(_image()).choose(LEFT_MAN_BOX).body[0]))
    got = dict(zip(MEDIAPIPE33, kp.body[kp.origins.index("blazepose")]))
    for name in ("nose", "left_shoulder", "right_hip", "left_ankle"):
        expected = np.array([300, 500]) + 0.3 * ref[name][:2]
        assert np.linalg.norm(got[name][:2] - expected) < 6, name


def test_several_people_and_choose(detector):
    man = _image()[60:480, 0:200]
    canvas = _paste(np.full((720, 1280, 3), 100, np.uint8), man, 0.6, 150, 400)
    canvas = _paste(canvas, man, 1.4, 700, 100)
    kp = detector(canvas)
    assert kp.num_people == 2
    boxes = kp.person_boxes()
    big = kp.choose("largest").person_boxes()[0]
    assert big[0] > 640 and (big[3] - big[1]) == max(boxes[:, 3] - boxes[:, 1])
    small = kp.choose((150, 400, 270, 652)).person_boxes()[0]
    assert 150 <= small[0] < small[2] <= 270


def test_two_frame_video_tracks_one_person(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    for name in ("basketball1.png", "basketball2.png"):
        writer.write(cv2.imread(str(IMAGES / name)))
    writer.release()
    assert [(i, t) for i, t, _ in read_frames(path)] == [(0, 0.0), (1, 0.1)]
    frames = list(track(path, holistic=False))
    assert [(k.num_people, k.frame_index, k.timestamp_s) for k in frames] == [(1, 0, 0.0), (1, 1, 0.1)]
    a, b = (_coco(k) for k in frames)
    moved = [np.linalg.norm(a[n][:2] - b[n][:2]) for n in COCO17]
    # consecutive frames (the ball and arms move a little): Full moves every point < 6 px,
    # Heavy (the default) a wrist or ankle up to ~13 px
    assert max(moved) < 16, moved
    x0, y0, x1, y1 = LEFT_MAN_BOX
    assert x0 <= a["nose"][0] <= x1 and y0 <= a["nose"][1] <= y1  # the man on the left
    # image files as frames
    seq = list(track([IMAGES / "basketball1.png", IMAGES / "basketball2.png"], holistic=False, fps=25))
    assert [k.timestamp_s for k in seq] == [0.0, 0.04] and seq[1].source.endswith("basketball2.png")


def test_bad_images_and_videos_name_the_file(tmp_path, detector):
    data = (IMAGES / "basketball1.png").read_bytes()
    cases = {
        "truncated.png": (data[: len(data) // 2], "truncated"),
        "empty.jpg": (b"", "empty file"),
        "noise.png": (os.urandom(2000), "not a readable image"),
        "cut.jpg": (cv2.imencode(".jpg", _image())[1].tobytes()[:5000], "truncated"),
    }
    for name, (content, match) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(KeypointsError, match=match) as err:
            detector(tmp_path / name)
        assert str(tmp_path / name) in str(err.value)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(os.urandom(4000))
    for name, match in (("empty.mp4", "0 bytes"), ("junk.mp4", "cannot open"), ("gone.mp4", "no such")):
        with pytest.raises(KeypointsError, match=match) as err:
            list(track(tmp_path / name))
        assert name in str(err.value)


def _can_unshare() -> bool:
    return (
        shutil.which("unshare") is not None
        and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0
    )


def test_cli_batch_offline(tmp_path):
    """The CLI on a folder with good and bad files, without network where the
    machine allows a network namespace (unshare -n)."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(IMAGES / "basketball1.png", src / "basketball1.png")
    (src / "truncated.png").write_bytes((IMAGES / "basketball1.png").read_bytes()[:5000])
    (src / "empty.mp4").write_bytes(b"")
    writer = cv2.VideoWriter(str(src / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    for name in ("basketball1.png", "basketball2.png"):
        writer.write(cv2.imread(str(IMAGES / name)))
    writer.release()
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "keypoints", str(src), "--out", str(out)]
    if _can_unshare():
        cmd = ["unshare", "-n", *cmd]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr  # 1: some inputs failed, the rest were processed
    assert "FAILED" in run.stdout and "truncated.png" in run.stdout and "empty.mp4" in run.stdout
    names = {p.name for p in out.iterdir()}
    assert {
        "basketball1_keypoints.json",
        "basketball1_overlay.png",
        "clip_000000_keypoints.json",
        "clip_000001_keypoints.json",
        "clip_overlay.mp4",
        "summary.json",
    } <= names
    assert not any(n.startswith(".") for n in names)  # no temporary files left
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 3 and summary["no_person"] == []
    assert sorted(Path(p).name for p in summary["failed"]) == ["empty.mp4", "truncated.png"]
    kp = read_openpose(out / "basketball1_keypoints.json")
    assert kp.num_people >= 1 and kp.left_hand is not None
    assert cv2.imread(str(out / "basketball1_overlay.png")).shape == (480, 640, 3)
    assert len(list(read_frames(out / "clip_overlay.mp4"))) == 2


def test_no_network_needed(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with MediaPipeDetector(holistic=True, find_people=False) as fresh:
        kp = fresh(IMAGES / "basketball1.png")
    assert kp.num_people == 1 and kp.face[0, :, 2].min() > 0


def test_detect_function_survives_cli_import():
    import keypoints
    import keypoints.cli  # noqa: F401  (the command line lives beside the function, not under its name)

    assert not isinstance(keypoints.detect, types.ModuleType)
    kp = keypoints.detect(IMAGES / "basketball1.png", holistic=False, find_people=False)
    assert kp.num_people == 1 and kp.left_hand is None
