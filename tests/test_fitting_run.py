"""run_fit.py end to end: bad inputs, resume, OpenPose JSON folders, video (few iterations)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import keypoints
from fitting.config import load_config
from fitting.outputs import OutputError
from fitting.pipeline import run, write_thread
from tests.conftest import FAST_FIT, PHOTOS

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "basketball1.png"
FAST = FAST_FIT


@pytest.fixture(scope="module")
def detections() -> dict[str, keypoints.Keypoints]:
    """Real MediaPipe keypoints of the two basketball frames, the player only (these tests check the
    single-person plumbing; tests/test_fitting_people.py fits both men)."""
    return {name: keypoints.detect(PHOTOS / f"{name}.png").choose("largest") for name in ("basketball1", "basketball2")}


def _openpose_folder(folder: Path, detections: dict[str, keypoints.Keypoints]) -> Path:
    for name, kp in detections.items():
        keypoints.write_openpose(kp, folder / f"{name}_keypoints.json")
    return folder


def test_bad_inputs_are_reported_and_the_run_finishes(tmp_path, detections):
    src = _openpose_folder(tmp_path / "in", detections)
    (src / "basketball2_keypoints.json").unlink()
    body25 = json.loads((src / "basketball1_keypoints.json").read_text())
    good = body25["people"][0]["pose_keypoints_2d"]
    for name, values in (("nan", [float("nan")] * len(good)), ("zeros", [0.0] * len(good))):
        person = dict(body25["people"][0], pose_keypoints_2d=values)
        (src / f"{name}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": [person]}))
    (src / "nobody_keypoints.json").write_text(json.dumps({"version": 1.3, "people": []}))
    text = (src / "basketball1_keypoints.json").read_text()
    (src / "truncated_keypoints.json").write_text(text[: len(text) // 2])
    png = DEMO.read_bytes()
    (src / "corrupt.png").write_bytes(png[: len(png) // 3])
    cv2.imwrite(str(src / "empty_room.png"), np.full((240, 320, 3), 90, np.uint8))
    (src / "notes.txt").write_text("not an input")
    cfg = load_config(None, FAST + ["camera.image_size=[640,480]", "output.mesh=false"])
    summary = run(src, tmp_path / "out", cfg, progress=False)
    assert summary.fitted == ["basketball1"]
    assert set(summary.skipped) == {"nan", "zeros", "nobody", "empty_room.png", "notes.txt"}
    assert "NaN" in summary.skipped["nan"] and "zero" in summary.skipped["zeros"]
    assert summary.skipped["nobody"] == summary.skipped["empty_room.png"] == "no person detected"
    assert set(summary.failed) == {"truncated", "corrupt.png"}
    assert "JSON" in summary.failed["truncated"] and "truncated" in summary.failed["corrupt.png"]
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["counts"] == {"fitted": 1, "already_done": 0, "skipped": 5, "failed": 2}
    assert (tmp_path / "out" / "config.yaml").is_file()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporaries, no lock
    assert "Traceback" in (tmp_path / "out" / "run.log").read_text()  # the failed items' tracebacks


def test_resume_refits_only_the_missing_frame(tmp_path, detections):
    src = _openpose_folder(tmp_path / "in", detections)
    keypoints.write_openpose(detections["basketball1"], src / "again_keypoints.json")
    out = tmp_path / "out"
    # files written on the writer's thread while the second batch fits
    cfg = load_config(None, FAST + ["camera.image_size=[640,480]", "batch_size=2", "output.write_thread=true"])
    first = run(src, out, cfg, progress=False)
    assert sorted(first.fitted) == ["again", "basketball1", "basketball2"]
    files = sorted(p for p in out.iterdir() if p.suffix in (".npz", ".obj", ".png"))
    assert len(files) == 9
    stamps = {p.name: p.stat().st_mtime_ns for p in files}
    # A run killed while writing "again" leaves its mesh and overlay but no .npz (written last).
    (out / "again.npz").unlink()
    second = run(src, out, cfg, progress=False)
    assert second.fitted == ["again"] and sorted(second.already_done) == ["basketball1", "basketball2"]
    assert sorted(p for p in out.iterdir() if p.suffix in (".npz", ".obj", ".png")) == files
    for p in files:
        changed = p.stat().st_mtime_ns != stamps.get(p.name)
        assert changed == p.name.startswith("again"), p.name
    # Other settings never count the old frames as theirs: refused, or refitted when asked to.
    other = load_config(None, FAST + ["camera.image_size=[640,480]", "camera.fov_deg=60"])
    with pytest.raises(OutputError, match="camera.fov_deg.*--overwrite"):
        run(src, out, other, progress=False)
    refitted = run(src, out, other, progress=False, overwrite=True).fitted
    assert sorted(refitted) == ["again", "basketball1", "basketball2"]
    # batch size and threads do not change a fit: a rerun with them changed resumes
    assert (
        len(
            run(
                src,
                out,
                load_config(None, [*FAST, "camera.image_size=[640,480]", "camera.fov_deg=60", "batch_size=1"]),
                progress=False,
            ).already_done
        )
        == 3
    )


def test_the_writer_thread_runs_where_the_fit_leaves_a_cpu_free(one_thread):
    def asks(*overrides: str, cpus: int | None = None) -> bool:
        return write_thread(load_config(None, list(overrides)), cpus)

    assert asks(cpus=2) and not asks(cpus=1)  # one torch thread (the fixture)
    assert asks("device=cuda", cpus=1)  # a GPU fit leaves the CPU free
    assert asks("output.write_thread=true", cpus=1) and not asks("output.write_thread=false", cpus=2)
    torch.set_num_threads(2)
    assert not asks(cpus=2) and asks(cpus=3)


def test_one_run_per_output_folder(tmp_path, detections):
    src = _openpose_folder(tmp_path / "in", detections)
    out = tmp_path / "out"
    out.mkdir()
    cfg = load_config(None, FAST + ["camera.image_size=[640,480]", "output.mesh=false", "output.overlay=false"])
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".bodyfit.lock").write_text(str(live.pid))
        with pytest.raises(OutputError, match=f"in use by another run \\(pid {live.pid}\\)"):
            run(src, out, cfg, progress=False)
    finally:
        live.kill()
        live.wait()
    assert sorted(run(src, out, cfg, progress=False).fitted) == ["basketball1", "basketball2"]  # a dead run's lock
    assert not (out / ".bodyfit.lock").exists()


def test_cli_on_an_openpose_folder_with_images(tmp_path, detections):
    src = _openpose_folder(tmp_path / "json", detections)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(ROOT / "run_fit.py"),
        str(src),
        "--out",
        str(out),
        "--images",
        str(PHOTOS),
        "--batch-size",
        "2",
        "--focal",
        "700",
        "--quiet",
        "--export",
        "bvh,glb",
        *FAST,
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fitted 2" in proc.stdout
    # the run's exports and report page (their contents: tests/test_fitting_export.py, test_fitting_report.py)
    assert {p.name for p in out.iterdir()} >= {"basketball1.bvh", "basketball2.glb", "report.html"}
    assert "basketball2" in (out / "report.html").read_text()
    bad = subprocess.run([*cmd[:5], "--export", "fbx"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "fbx" in bad.stderr
    with np.load(out / "basketball2.npz") as f:
        assert f["body_pose"].shape == (21, 3) and f["global_orient"].shape == (3,)
        assert f["left_hand_pose"].shape == (15, 3) and f["shape"].shape == (6,)
        assert f["latent"].shape == (32,)  # the latent is saved too, never alone
        assert np.allclose(f["focal"], 700) and tuple(f["image_size"]) == (640, 480)
        assert f["keypoints_body25"].shape == (25, 3) and f["stage_losses"].shape == (3,)
        # every start hypothesis' final loss, and which one won
        assert list(f["hypothesis_names"]) == ["initialiser"]
        losses = f["hypothesis_losses"]
        assert losses.shape == (1,) and np.isfinite(losses).all() and f["hypothesis"] == 0
    overlay = cv2.imread(str(out / "basketball2.overlay.png"))
    assert overlay.shape == (480, 640, 3)
    assert (out / "basketball1.obj").read_text().startswith("v ")


def test_video_gives_per_frame_outputs_and_an_overlay_video(tmp_path):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for name in ("basketball1", "basketball1", "basketball2", "basketball2", "basketball2"):
        writer.write(cv2.imread(str(PHOTOS / f"{name}.png")))
    writer.release()
    out = tmp_path / "out"
    # one person: MediaPipe's tracking of the player (keypoints.person=all finds the cut-off man
    # too, and writes per-track outputs: tests/test_fitting_sequence.py)
    settings = ["video.window=3", "video.overlap=1", "video.shape_frames=2", "output.mesh=false"]
    # the frames written on the writer's thread: motion.npz and overlay.mp4 read them after the last window
    cfg = load_config(None, FAST + settings + ["keypoints.person=largest", "output.write_thread=true"])
    summary = run(video, out, cfg, progress=False)
    names = [f"clip.mp4/{i:06d}" for i in range(5)]
    assert sorted(summary.fitted) == names and not summary.failed
    shapes = [np.load(out / f"{n}.npz")["shape"] for n in names]
    assert all(np.array_equal(s, shapes[0]) for s in shapes)  # one shape for the person
    motion = np.load(out / "clip.mp4" / "motion.npz")  # the whole motion of the one track
    assert motion["frame_index"].tolist() == list(range(5)) and float(motion["fps"]) == 10
    assert np.array_equal(motion["body_pose"][3], np.load(out / f"{names[3]}.npz")["body_pose"])
    tracks = json.loads((out / "clip.mp4" / "tracks.json").read_text())["tracks"]
    assert [(t["id"], t["frames_fitted"]) for t in tracks] == [(0, 5)]
    # the frame's own three stages, then the window's: bodies (refine), then hands and face (refine_details)
    assert np.load(out / f"{names[0]}.npz")["stage_losses"].shape[-1] == 3 + 2
    cap = cv2.VideoCapture(str(out / "clip.mp4" / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    cap.release()
    again = run(video, out, cfg, progress=False)  # resumed: nothing to do, no new detection
    assert again.fitted == [] and sorted(again.already_done) == names


def test_a_killed_run_resumes_without_redoing_or_losing_frames(tmp_path, detections):
    src = _openpose_folder(tmp_path / "in", detections)
    keypoints.write_openpose(detections["basketball1"], src / "again_keypoints.json")
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(ROOT / "run_fit.py"),
        str(src),
        "--out",
        str(out),
        "--batch-size",
        "1",
        "--quiet",
        "camera.image_size=[640,480]",
        *FAST,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob("[!.]*.npz")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("[!.]*.npz")}
    assert before, "the run wrote nothing before it was killed"
    holiday = out / ".holiday.2019.final.jpg"  # a user's file whose name looks like name.pid.random.ext
    holiday.write_bytes(b"not ours")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = ["again", "basketball1", "basketball2"]
    assert sorted(p.stem for p in out.glob("[!.]*.npz")) == names
    assert [p.name for p in out.glob(".*")] == [holiday.name], "temporaries left, or the user's file removed"
    assert all((out / f"{n}.obj").is_file() and (out / f"{n}.overlay.png").is_file() for n in names)
    for name, stamp in before.items():
        assert (out / name).stat().st_mtime_ns == stamp, f"{name} was fitted again"
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["already_done"] + summary["fitted"]) == names
    assert sorted(summary["already_done"]) == sorted(n[:-4] for n in before)
    assert holiday.read_bytes() == b"not ours"


def test_a_fit_far_from_its_keypoints_is_failed_not_written(tmp_path, detections):
    src = _openpose_folder(tmp_path / "in", detections)
    cfg = load_config(None, [*FAST, "camera.image_size=[640,480]", "output.max_reprojection=0.001"])
    summary = run(src, tmp_path / "out", cfg, progress=False)
    assert summary.fitted == [] and set(summary.failed) == {"basketball1", "basketball2"}
    assert all("fit rejected: reprojection error" in v for v in summary.failed.values())
    assert not list((tmp_path / "out").glob("*.npz"))
