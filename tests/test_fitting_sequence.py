"""OpenPose frame folders fitted as videos (`run_fit.py FOLDER --sequence`), tracked people,
per-person and per-track outputs, bad folders (few iterations: plumbing, not accuracy)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import keypoints
import run_fit
from configs import ConfigError
from fitting.config import load_config
from fitting.export import export_run
from fitting.fitter import Fitter
from fitting.options import FitOptions
from fitting.pipeline import run
from fitting.priors import load_pose_space
from fitting.synthetic import render_views
from fitting.targets import FrameTargets
from fitting.tracks import SequenceFit
from keypoints import default_weights
from prior.initialiser.model import Initialiser
from prior.initialiser.temporal_lifter import TemporalLifter, save

SIZE = (1000, 600)
FAST = [
    "stages.camera.max_iter=2",
    "optimizer.max_iter=2",
    "schedule=[camera,body1,body5]",
    "output.max_reprojection=100",
    "output.mesh=false",
    "video.window=4",
    "video.overlap=1",
    "video.shape_frames=1",
    "optimizer.frames_per_call=0",  # one call per evaluation: fast for these few rows
    f"camera.image_size=[{SIZE[0]},{SIZE[1]}]",
    "camera.focal=1100",
]


def _walker(model, start: float, end: float, depth: float, facing: float, frames: int, seed: int) -> np.ndarray:
    """(T, 25, 3) BODY_25 points of one Anny body (one shape) walking from x = start to end (m)
    at `depth`, seen from the side `facing` (azimuth, deg), projected with 2 px noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, frames)
    pose = np.zeros((frames, 21, 3), np.float32)
    pose[:, 0, 0], pose[:, 1, 0] = 0.3 * np.sin(6 * t), -0.3 * np.sin(6 * t)  # hips swing
    transl = np.stack([start + (end - start) * t, np.full(frames, 0.1), np.full(frames, depth)], 1)
    shape = np.tile(np.array([[0.5, 0.5, 0.5, 0.5, 0.6, 0.5]], np.float32), (frames, 1))[:, : model.num_shape]
    views = render_views(
        model, pose, None, rng, noise_px=2, drop=0.05, image_size=SIZE, azimuth_deg=(facing, facing),
        elevation_deg=(0, 0), shape=shape, transl=transl,
    )  # fmt: skip
    return np.stack([f.points["body25"][0] for f in views.frames])


def _write(folder: Path, name: str, number: int, people: list[np.ndarray]) -> None:
    body = np.stack(people) if people else np.zeros((0, 25, 3), np.float32)
    keypoints.write_openpose(keypoints.Keypoints("body25", body), folder / f"{name}_{number}_keypoints.json")


def test_a_sequence_folder_is_fitted_as_one_video_in_frame_number_order(anny_body, tmp_path):
    folder, out = tmp_path / "walk", tmp_path / "out"
    folder.mkdir()
    person = _walker(anny_body, -0.5, 0.5, 5.0, 90, 7, seed=0)
    for i, points in enumerate(person):  # walk_8 .. walk_14: name order is not frame order
        _write(folder, "walk", 8 + i, [points])
    _write(folder, "walk", 15, [])  # nobody: a gap, as in videos
    cfg = load_config(None, FAST + ["output.overlay=false"])
    summary = run(folder, out, cfg, progress=False, sequence_fps=24.0)
    names = [f"walk/{i:06d}" for i in range(8, 15)]
    assert sorted(summary.fitted) == names and not summary.failed
    assert summary.skipped == {"walk/000015": "no person detected"}
    motion = np.load(out / "walk" / "motion.npz")
    assert motion["frame_index"].tolist() == list(range(8, 15)) and float(motion["fps"]) == 24.0
    assert motion["frame_names"].tolist() == [f"walk_{i}" for i in range(8, 15)]
    assert motion["body_pose"].shape == (7, 21, 3) and (motion["shape"] == motion["shape"][0]).all()  # one shape
    assert np.diff(motion["transl"][:, 0]).mean() > 0  # walking right
    with np.load(out / "walk" / "000008.npz") as f:  # a frame's own three stages, then the window's two
        assert f["stage_losses"].shape[-1] == 5 and str(f["input"]).endswith("walk_8_keypoints.json")
    tracks = json.loads((out / "walk" / "tracks.json").read_text())
    assert tracks["fps"] == 24.0 and len(tracks["tracks"]) == 1
    assert {k: tracks["tracks"][0][k] for k in ("id", "first_frame", "last_frame", "frames_fitted")} == {
        "id": 0,
        "first_frame": 8,
        "last_frame": 14,
        "frames_fitted": 7,
    }
    assert summary.tracks == {"walk": {"tracks": 1, "fitted": 1, "stills": 0, "skipped": 0}}
    again = run(folder, out, cfg, progress=False, sequence_fps=24.0)  # resumed: nothing to do
    assert again.fitted == [] and sorted(again.already_done) == names


def test_two_people_crossing_keep_their_ids_and_get_per_person_outputs(anny_body, tmp_path):
    """A walks right in front, B walks left behind; B is hidden while they cross (frames 4-5),
    and the file lists them in the other order after the crossing. A third, two-frame
    track (a false detection) is short: fitted as stills."""
    folder, out = tmp_path / "cross", tmp_path / "out"
    folder.mkdir()
    a = _walker(anny_body, -1.5, 1.5, 5.0, 90, 10, seed=1)
    b = _walker(anny_body, 1.5, -1.5, 6.5, -90, 10, seed=2)
    ghost = a[0].copy()
    ghost[ghost[:, 2] > 0, :2] = ghost[ghost[:, 2] > 0, :2] * 0.3 + [20, 20]  # small, top left
    for t in range(10):
        people = [a[t]] if t in (4, 5) else [a[t], b[t]] if t < 4 else [b[t], a[t]]
        _write(folder, "cross", t, people + ([ghost] if t in (7, 8) else []))
    cfg = load_config(None, FAST + ["output.overlay=false", "video.window=10"])
    summary = run(folder, out, cfg, progress=False, sequence_fps=30.0)
    assert not summary.failed
    tracks = json.loads((out / "cross" / "tracks.json").read_text())["tracks"]
    assert [(t["id"], t["first_frame"], t["last_frame"], t["frames_fitted"], t["fitted_as"]) for t in tracks] == [
        (0, 0, 9, 10, "sequence"),
        (1, 0, 9, 8, "sequence"),
        (2, 7, 8, 2, "still"),
    ]
    for person, direction in ((0, 1), (1, -1)):  # each track's body goes its own person's way
        motion = np.load(out / "cross" / f"motion.person_{person}.npz")
        assert int(motion["person_id"]) == person and (motion["shape"] == motion["shape"][0]).all()
        assert direction * (motion["transl"][-1, 0] - motion["transl"][0, 0]) > 0.5
    assert not (out / "cross" / "motion.npz").exists()
    assert (out / "cross" / "000004.person_0.npz").exists() and not (out / "cross" / "000004.person_1.npz").exists()
    with np.load(out / "cross" / "000009.person_1.npz") as f:
        record = json.loads(str(f["frame_people"]))
        assert int(f["person_id"]) == 1 and record["written"] == [0, 1]
    assert summary.people()["most_in_a_frame"] == 3
    assert summary.tracks["cross"] == {"tracks": 3, "fitted": 2, "stills": 1, "skipped": 0}
    written = export_run(out, "bvh")  # every track exported, at the recorded frame rate
    assert sorted(p.name for p in written) == [f"motion.person_{i}.bvh" for i in range(3)]
    assert "Frame Time: 0.0333" in (out / "cross" / "motion.person_1.bvh").read_text()


def test_a_bad_sequence_folder_loses_no_good_frame(tmp_path, capsys):
    folder, images, out = tmp_path / "seq", tmp_path / "images", tmp_path / "out"
    folder.mkdir()
    images.mkdir()
    person = np.zeros((25, 3), np.float32)
    person[:, 0] = np.linspace(400, 600, 25)
    person[:, 1] = np.linspace(100, 500, 25)
    person[:, 2] = 1
    for i in range(4):
        _write(folder, "seq", i, [person])
        size = (640, 480) if i == 2 else SIZE
        cv2.imwrite(str(images / f"seq_{i}.png"), np.full((size[1], size[0], 3), 90, np.uint8))
    (folder / "seq_1_keypoints.json").write_text('{"people": [')  # corrupt
    _write(folder, "seq_last", 0, [person])
    (folder / "seq_last_0_keypoints.json").rename(folder / "seq_last_keypoints.json")  # no frame number
    code = run_fit.main([str(folder), "--sequence", "--images", str(images), "--out", str(out), "--quiet", *FAST[:-2]])
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["fitted"]) == ["seq/000000", "seq/000003"]
    assert "JSON" in summary["failed"]["seq/000001"] and "seq_1_keypoints.json" in summary["failed"]["seq/000001"]
    assert "640x480" in summary["failed"]["seq/000002"] and "one camera" in summary["failed"]["seq/000002"]
    assert "frame number" in summary["skipped"]["seq/seq_last_keypoints.json"]
    assert all("\n" not in why for why in (*summary["failed"].values(), *summary["skipped"].values()))
    cap = cv2.VideoCapture(str(out / "seq" / "overlay.mp4"))  # the good frames' images, at 30 fps
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 2 and cap.get(cv2.CAP_PROP_FPS) == 30
    cap.release()
    assert json.loads((out / "seq" / "tracks.json").read_text())["fps"] == 30.0
    capsys.readouterr()


@pytest.mark.parametrize(
    "args, says",
    [(["--fps", "25"], "--fps is for a --sequence"), (["--sequence", "--fps", "0"], "frame rate above 0")],
)
def test_bad_sequence_options_exit_2_with_one_line(tmp_path, capsys, args, says):
    with pytest.raises(SystemExit) as e:
        run_fit.main([str(tmp_path), "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and says in err


def test_a_folder_without_numbered_frames_fails_in_one_line(tmp_path):
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "x_keypoints.json").write_text('{"people": []}')
    summary = run(tmp_path / "seq", tmp_path / "out", load_config(None, FAST), progress=False, sequence_fps=30.0)
    assert "no readable numbered OpenPose frames" in summary.failed["seq"]


def test_the_video_cache_has_a_person_axis_and_an_older_cache_is_not_misread(tmp_path):
    from fitting.video import _load_detections, _save_detections

    two = np.ones((2, 33, 3), np.float32) * np.arange(2)[:, None, None]
    hands = np.zeros((2, 21, 3), np.float32)
    kps = [
        keypoints.Keypoints("mediapipe33", two, left_hand=hands, image_size=(64, 48), frame_index=0),
        keypoints.Keypoints.empty("mediapipe33", image_size=(64, 48), frame_index=1),
        keypoints.Keypoints("mediapipe33", two[1:], image_size=(64, 48), frame_index=2),
    ]
    cache = tmp_path / "keypoints.npz"
    _save_detections(cache, kps, "all, search every 1")
    back = _load_detections(cache, "all, search every 1")
    assert [k.num_people for k in back] == [2, 0, 1] and [k.frame_index for k in back] == [0, 1, 2]
    assert np.array_equal(back[0].body, two) and np.array_equal(back[2].body, two[1:])
    assert back[0].left_hand.shape == (2, 21, 3) and back[0].image_size == (64, 48)
    assert _load_detections(cache, "tracked") is None  # the other mode: detected again
    np.savez(cache, frame_index=np.arange(3), body=np.zeros((3, 33, 3)), people=np.ones(3, int))  # one-person layout
    assert _load_detections(cache, "all, search every 1") is None


BODY25_AS_COCO17 = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]  # COCO order from BODY_25


def test_video_start_lifter_starts_and_anchors_every_frame_from_the_lifter(anny_body, tmp_path):
    """`video.start: lifter`: the lifter reads the whole track once (a gap included); each frame's
    own fit starts from its reading (also where frames with other keypoint sets are fitted in
    batches of their own), the window's refinement is anchored to it, and on Anny the person's
    shape is the lifter's. A tiny random lifter: plumbing, not accuracy."""
    torch.manual_seed(0)
    lifter = TemporalLifter(Initialiser(width=16, blocks=0), width=8, dilations=(1,))
    torch.nn.init.normal_(lifter.out.weight, std=0.1)  # not the initialiser's answer
    save(lifter, tmp_path / "lifter.pt")
    cfg = load_config(overrides=[*FAST, "video.start=lifter", f"video.lifter={tmp_path / 'lifter.pt'}"])
    fitter = Fitter(anny_body, load_pose_space("vposer", None, anny_body.device), FitOptions.of(cfg))
    points = _walker(anny_body, -0.5, 0.5, 5.0, 90, 8, seed=3)
    targets = [FrameTargets({"body25": (p, default_weights("body25"))}, (1100, 1100), (500, 300), SIZE) for p in points]
    for i in (4, 5):  # also a second keypoint set: fit_frames fits these two in a batch of their own
        targets[i].points["coco17"] = (points[i][BODY25_AS_COCO17], default_weights("coco17"))
    frames = [(i, targets[i]) for i in (0, 1, 2, 4, 5, 6, 7)]  # frame 3: nobody found
    lifted = fitter.lift([f for _, f in frames], [i for i, _ in frames])
    anchors = []

    def fit_sequence(*args, **kwargs):
        anchors.append(args[5])
        return Fitter.fit_sequence(fitter, *args, **kwargs)

    fitter.fit_sequence = fit_sequence
    fit = SequenceFit(frames, fitter, lambda _: None)
    results = {}
    while fit.next_frame != float("inf"):
        results.update(fit.step())
    assert sorted(results) == [0, 1, 2, 4, 5, 6, 7]
    for p, (i, _) in enumerate(frames):
        assert np.allclose(results[i].start_orient, lifted.global_orient[p].numpy(), atol=1e-5)
        assert np.allclose(results[i].params["shape"], lifted.shape.numpy(), atol=1e-5)
    window = cfg.video.window
    assert torch.equal(anchors[0], lifted.body_pose[:window])  # the first window's frames
    assert len(anchors) == 2 and torch.equal(anchors[1], lifted.body_pose[window - cfg.video.overlap :])


def test_video_start_must_be_initialiser_or_lifter():
    with pytest.raises(ConfigError, match="video.start"):
        load_config(overrides=["video.start=walker"])
