"""Images that used to kill the process (smaller than HOG's window, or with a
side MediaPipe cannot take) and the detector that runs MediaPipe in a worker
process: real MediaPipe, images made here, examples/basketball1.png and the
images in ../shared/data/images when present."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from keypoints import IsolatedDetector, KeypointsError, MediaPipeDetector, read_openpose, track
from keypoints.person_finder import HogFinder
from tests.conftest import PHOTOS as REAL_PHOTOS

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "basketball1.png"
PHOTOS = [EXAMPLE, *(REAL_PHOTOS / name for name in ("astronaut.jpg", "basketball2.png"))]
# Each of these crashed run_fit.py (SIGSEGV or abort inside HOG's detectMultiScale).
TINY = [(1, 1), (10, 10), (30, 30), (100, 50), (200, 20), (1000, 3), (1, 2000)]
# A side >= 32767 px aborts MediaPipe (OpenCV's remap) unless the image is scaled down first.
HUGE_SIDE = [(40000, 2), (2, 40000)]


def _noise(width: int, height: int) -> np.ndarray:
    return np.random.default_rng(width * 7919 + height).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def isolated():
    with IsolatedDetector(holistic=True) as d:
        yield d


@pytest.fixture(scope="module")
def in_process():
    with MediaPipeDetector(holistic=True) as d:
        yield d


class _SpyHog:
    """Stands in for cv2.HOGDescriptor: records the image sizes searched and
    refuses (instead of crashing) any smaller than the window."""

    def __init__(self, real: cv2.HOGDescriptor) -> None:
        self.real, self.winSize, self.searched = real, real.winSize, []

    def detectMultiScale(self, image, **kwargs):
        h, w = image.shape[:2]
        self.searched.append((w, h))
        if w < self.winSize[0] or h < self.winSize[1]:
            raise AssertionError(f"detectMultiScale on {w}x{h} px (window {self.winSize}) crashes OpenCV")
        return self.real.detectMultiScale(image, **kwargs)


def test_an_unknown_option_is_refused_before_a_worker_starts():
    with pytest.raises(TypeError, match=r"unknown options \['max_peopel'\].*'max_people'"):
        IsolatedDetector(holistic=False, max_peopel=2)


def test_hog_never_sees_an_image_smaller_than_its_window():
    finder = HogFinder()
    spy = finder._hog = _SpyHog(finder._hog)
    assert spy.winSize == (64, 128)
    for w, h in TINY + HUGE_SIDE:
        boxes, points = finder(_noise(w, h))
        assert boxes.shape == (0, 5) and points.shape == (0, 17, 3), (w, h)
    assert spy.searched == []
    # At the boundary: searched as is when the window fits, else only at 2x when that fits.
    expected = {
        (64, 128): [(64, 128), (128, 256)],
        (63, 128): [(126, 256)],
        (64, 127): [(128, 254)],
        (32, 64): [(64, 128)],
        (31, 64): [],
        (700, 60): [],  # too wide for the 2x search, too low at 1x
    }
    for (w, h), sizes in expected.items():
        spy.searched.clear()
        finder(np.full((h, w, 3), 128, np.uint8))
        assert spy.searched == sizes, (w, h)
    spy.searched.clear()
    boxes, _ = finder(cv2.imread(str(EXAMPLE)))  # normal photos are still searched, and people found
    assert spy.searched == [(640, 480)] and len(boxes) >= 1


def test_tiny_and_huge_side_images_give_no_person(isolated):
    pid = isolated.pid
    for w, h in TINY + HUGE_SIDE:
        kp = isolated(_noise(w, h), f"{w}x{h}.png")
        assert (kp.num_people, kp.image_size, kp.source) == (0, (w, h), f"{w}x{h}.png")
    grey = isolated(np.zeros((20, 200), np.uint8), "grey")  # (H, W) arrays too
    assert grey.num_people == 0 and grey.image_size == (200, 20)
    assert isolated.pid == pid and isolated.restarts == 0  # the worker never crashed
    for shape in ((0, 10, 3), (10, 0, 3), (0, 0)):
        with pytest.raises(KeypointsError, match=r"empty\.png: image has no pixels"):
            isolated(np.zeros(shape, np.uint8), "empty.png")
    for photo in PHOTOS:
        assert isolated(cv2.imread(str(photo)), str(photo)).num_people >= 1, photo
    assert isolated.pid == pid


def test_isolated_matches_in_process(isolated, in_process):
    for photo in PHOTOS:
        ref = in_process(photo)
        for got in (isolated(photo), isolated(cv2.imread(str(photo)), str(photo))):
            assert got.source == ref.source == str(photo) and got.image_size == ref.image_size
            assert got.num_people == ref.num_people >= 1
            for part in ("body", "left_hand", "right_hand", "face"):
                np.testing.assert_allclose(getattr(got, part), getattr(ref, part), atol=1e-4, err_msg=part)
    rgb = isolated(cv2.imread(str(EXAMPLE))[:, :, ::-1], "rgb", color="rgb")
    np.testing.assert_allclose(rgb.body, in_process(EXAMPLE).body, atol=1e-4)
    with pytest.raises(KeypointsError, match="8-bit"):
        isolated(np.zeros((64, 64, 3), np.float32))


def test_mediapipe_error_starts_a_new_graph(in_process):
    """MediaPipe's graph refuses every later image after one error ("Graph has
    errors"): the detector reports the image and builds a new graph."""
    original = in_process._model

    class Failing:
        def process(self, image):
            raise RuntimeError("CalculatorGraph::Run() failed:\nROI width and height must be > 0.")

        def close(self):
            pass

    in_process._model = Failing()
    try:
        with pytest.raises(KeypointsError, match=r"^x\.png \(640x480 px\): MediaPipe failed: ROI width and height"):
            in_process(cv2.imread(str(EXAMPLE)), source="x.png")
        assert not isinstance(in_process._model, Failing)
        assert in_process(EXAMPLE).num_people >= 1
    finally:
        original.close()


def _hold_fifo(path: Path, deadline_s: float = 60.0) -> int:
    """Open `path` (a FIFO) for writing once a reader has it open; return the fd."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: nobody reads it yet
                raise
            time.sleep(0.01)
    raise TimeoutError(f"nobody opened {path}")


def _call_in_thread(detector, *args, **kwargs) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run():
        try:
            result["value"] = detector(*args, **kwargs)
        except BaseException as e:
            result["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def test_worker_killed_mid_call_fails_that_item_only(isolated, tmp_path):
    """The worker blocks reading a FIFO (so it is surely inside the call) and
    is killed with SIGSEGV; the call fails naming its source, the next works."""
    fifo = tmp_path / "stuck.png"
    os.mkfifo(fifo)
    first_pid, restarts = isolated.pid, isolated.restarts
    thread, result = _call_in_thread(isolated, fifo)
    fd = _hold_fifo(fifo)  # the worker has opened it: it is inside the request
    try:
        os.kill(first_pid, signal.SIGSEGV)
        thread.join(60)
    finally:
        os.close(fd)
    assert not thread.is_alive()
    error = result.get("error")
    assert isinstance(error, KeypointsError), result
    assert str(error).startswith(f"{fifo}: the detector crashed (signal {int(signal.SIGSEGV)}); item skipped")
    kp = isolated(EXAMPLE)
    assert kp.num_people >= 1
    assert isolated.pid != first_pid and isolated.restarts == restarts + 1
    # Killed while idle (e.g. by the OOM killer): the next item is not blamed.
    os.kill(isolated.pid, signal.SIGKILL)
    time.sleep(0.2)
    assert isolated(EXAMPLE).num_people >= 1 and isolated.restarts == restarts + 2


def test_worker_that_hangs_is_killed_after_the_timeout(isolated, tmp_path):
    fifo = tmp_path / "hangs.png"
    os.mkfifo(fifo)
    pid, timeout = isolated.pid, isolated.timeout_s
    isolated.timeout_s = 1.0
    fd = None
    try:
        thread, result = _call_in_thread(isolated, fifo)
        fd = _hold_fifo(fifo)  # opened and never written: the worker waits forever
        thread.join(60)
    finally:
        isolated.timeout_s = timeout
        if fd is not None:
            os.close(fd)
    error = result.get("error")
    assert isinstance(error, KeypointsError), result
    assert str(error).startswith(f"{fifo}: the detector did not answer within 1 s; item skipped")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the hung worker is gone
    assert isolated(EXAMPLE).num_people >= 1 and isolated.pid != pid


def _video(path: Path, frames: int = 3) -> Path:
    image = cv2.imread(str(EXAMPLE))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    for i in range(frames):
        writer.write(np.roll(image, 4 * i, axis=1))
    writer.release()
    return path


def test_track_in_the_worker(isolated, tmp_path, monkeypatch):
    clip = _video(tmp_path / "clip.mp4")
    ref = list(track(clip, holistic=True))
    seen = []
    got = isolated.track(clip, on_frame=seen.append)
    assert seen == got and len(got) == len(ref) == 3
    for a, b in zip(ref, got):
        assert (b.frame_index, b.timestamp_s, b.source) == (a.frame_index, a.timestamp_s, f"{clip}#{a.frame_index}")
        assert b.num_people == a.num_people == 1
        for part in ("body", "left_hand", "right_hand", "face"):
            np.testing.assert_allclose(getattr(b, part), getattr(a, part), atol=1e-4, err_msg=part)
    pid = isolated.pid
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(KeypointsError, match="empty.mp4: empty file"):
        isolated.track(tmp_path / "empty.mp4")
    assert isolated.pid == pid  # an unreadable video is not a crash
    # The worker dies while tracking (killed right after the request is sent).
    request = isolated._request

    def request_then_kill(message, payload):
        request(message, payload)
        os.kill(isolated.pid, signal.SIGKILL)

    monkeypatch.setattr(isolated, "_request", request_then_kill)
    with pytest.raises(KeypointsError, match=r"clip\.mp4 \(after \d+ frame\(s\)\): the detector crashed \(signal 9\)"):
        isolated.track(clip)
    monkeypatch.undo()
    assert len(isolated.track(clip)) == 3 and isolated.pid != pid


CRASH_ON_MARKED = """
import os, signal, sys
if sys.argv[:1] == ["-c"] and len(sys.argv) == 4:  # only in the detector's worker
    from multiprocessing import connection
    _recv = connection.Connection.recv
    def _recv_or_crash(self):
        message = _recv(self)
        if "crashme" in repr(message)[:4000]:
            os.kill(os.getpid(), signal.SIGSEGV)
        return message
    connection.Connection.recv = _recv_or_crash
"""


def test_cli_goes_on_after_tiny_images_and_a_crash(tmp_path):
    """A folder with the tiny images, the photos and one image on which the
    worker segfaults (a sitecustomize makes it so): every item is reported,
    the photos after the crash are still detected, no native log line shows."""
    src, out, hook = tmp_path / "in", tmp_path / "out", tmp_path / "hook"
    src.mkdir()
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(CRASH_ON_MARKED)
    tiny = []
    for w, h in TINY:
        tiny.append(f"tiny_{w}x{h}.png")
        cv2.imwrite(str(src / tiny[-1]), _noise(w, h))
    photos = [f"photo{i}_{p.name}" for i, p in enumerate(PHOTOS)]
    for name, photo in zip(photos, PHOTOS):
        os.symlink(photo, src / name)
    os.symlink(EXAMPLE, src / "a_crashme.png")  # first in name order: the others come after the crash
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(hook)]), "BODYFIT_VERBOSE": "0"}
    cmd = [sys.executable, "-m", "keypoints", str(src), "--out", str(out), "--no-overlay"]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr  # 1: an item failed, the rest were processed
    summary = json.loads((out / "summary.json").read_text())
    crashed = str(src / "a_crashme.png")
    assert list(summary["failed"]) == [crashed]
    assert summary["failed"][crashed].startswith(
        f"{crashed}: the detector crashed (signal {int(signal.SIGSEGV)}); item skipped"
    )
    assert summary["frames"] == len(tiny) + len(photos)
    assert sorted(summary["no_person"]) == sorted(tiny)
    for name in photos:
        assert read_openpose(out / f"{Path(name).stem}_keypoints.json").num_people >= 1, name
    assert "FAILED" in run.stdout and "a_crashme.png" in run.stdout
    noise = ("XNNPACK", "absl", "W0000", "I0000", "Warp", "Feedback manager")
    assert not [line for line in run.stderr.splitlines() if any(n in line for n in noise)], run.stderr
