"""fitting.outputs: the Writer leaves the caller's fits as they are; resuming asks what an earlier
run left of a frame without recording it, and records it apart; writing on the writer's thread gives
the same files and records."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from fitting.config import load_config
from fitting.fitter import FitResult
from fitting.outputs import Scene, Writer, frame_paths
from fitting.outputs.npz import load_frame_params
from fitting.synthetic import render_views
from fitting.targets import PersonTargets

SETTINGS = ["output.mesh=false", "output.overlay=false", "output.max_reprojection=100"]


def _scenes(model, n: int = 2) -> list[Scene]:
    """`n` frames, one with one person and the rest with two, whose fits are the known bodies."""
    rng = np.random.default_rng(0)
    views = render_views(model, rng.normal(0, 0.2, (2 * n, 21, 3)).astype(np.float32), None, rng)
    results = [
        FitResult(
            {k: v[i] for k, v in views.params.items()},
            np.zeros(1),
            np.zeros(1, int),
            {"body_data": 1.0},
            np.zeros(3),
            projected={"body25": f.points["body25"][0][:, :2]},
        )
        for i, f in enumerate(views.frames)
    ]
    people = [PersonTargets(i, f) for i, f in enumerate(views.frames)]
    scenes = [Scene("one.png", Path("/in/one.png"), people[:1], results[:1])]
    scenes += [
        Scene(f"two_{i}.png", Path(f"/in/two_{i}.png"), people[2 * i : 2 * i + 2], results[2 * i : 2 * i + 2])
        for i in range(1, n)
    ]
    return scenes


def test_writing_leaves_the_fits_as_they_are(anny_body, tmp_path):
    scenes = _scenes(anny_body)
    before = [copy.deepcopy(r.params) for s in scenes for r in s.results]
    Writer(tmp_path, anny_body, load_config(None, SETTINGS)).write(scenes)
    after = [r.params for s in scenes for r in s.results]
    assert [sorted(p) for p in after] == [sorted(p) for p in before]
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(after, before) for k in b)
    saved = load_frame_params(tmp_path, "one.png")  # the npz holds every part, zeros where not fitted
    assert not saved["left_hand_pose"].any() and saved["left_hand_pose"].shape == (15, 3)
    np.testing.assert_array_equal(saved["body_pose"], before[0]["body_pose"].astype(np.float32))


def test_asking_what_a_run_left_records_nothing(anny_body, tmp_path):
    scenes = _scenes(anny_body)
    cfg = load_config(None, SETTINGS)
    Writer(tmp_path, anny_body, cfg).write(scenes)
    writer = Writer(tmp_path, anny_body, cfg)
    one, two = (writer.saved_frame(s.key, s.source) for s in scenes)
    assert writer.summary.to_dict() == Writer(tmp_path, anny_body, cfg).summary.to_dict()  # nothing recorded
    assert one.done == ("one.png",) and two.done == ("two_1.png.person_2", "two_1.png.person_3")
    writer.record_saved(one)
    writer.record_saved(two)
    assert writer.summary.already_done == ["one.png", "two_1.png.person_2", "two_1.png.person_3"]
    assert writer.summary.frame_of["two_1.png.person_3"] == "two_1.png"

    other = writer.saved_frame("one.png", Path("/in/elsewhere.png"))  # another input's fit: left as it is
    assert other.done == () and "holds a fit of /in/one.png" in other.foreign
    writer.record_saved(other)
    assert "holds a fit of" in writer.summary.failed["one.png"]
    assert Writer(tmp_path, anny_body, cfg, overwrite=True).saved_frame("one.png", Path("/in/elsewhere.png")) is None
    frame_paths(tmp_path, "two_1.png.person_3")["npz"].unlink()  # a run killed while writing the frame
    assert writer.saved_frame("two_1.png", Path("/in/two_1.png")) is None


def test_a_frames_unfitted_people_are_reported_again_on_resume(anny_body, tmp_path):
    scene = _scenes(anny_body)[1]
    reason = "too small"
    scene.people[1] = PersonTargets(3, None, reason)
    scene.results = scene.results[:1]
    cfg = load_config(None, SETTINGS)
    Writer(tmp_path, anny_body, cfg).write([scene])
    writer = Writer(tmp_path, anny_body, cfg)
    saved = writer.saved_frame(scene.key, scene.source)
    assert saved.done == ("two_1.png.person_2",) and saved.skipped == {"two_1.png.person_3": reason}
    writer.record_saved(saved)
    assert writer.summary.skipped == {"two_1.png.person_3": reason}


def test_background_writes_are_the_callers_files_drawn_on_the_writers_thread(anny_body, tmp_path, monkeypatch):
    from body.render import OverlayRenderer

    threads: list[str] = []
    render = OverlayRenderer.render

    def spy(self, *args, **kwargs):  # the real renderer, noting the thread that draws
        threads.append(threading.current_thread().name)
        return render(self, *args, **kwargs)

    monkeypatch.setattr(OverlayRenderer, "render", spy)
    cfg = load_config(None, ["output.max_reprojection=100"])  # meshes and overlays on
    scenes = _scenes(anny_body, 3)
    now = Writer(tmp_path / "now", anny_body, cfg)
    now.write(scenes[:2])  # the same calls: a call's meshes are posed together
    now.write(scenes[2:])
    now.finish(0.0)
    later = Writer(tmp_path / "later", anny_body, cfg, background=True)
    (tmp_path / "later" / "two_2.png.person_4.obj").mkdir(parents=True)  # this person's files cannot be written
    later.write(scenes[:2])
    later.write(scenes[2:])
    assert later.summary.fitted == ["one.png", "two_1.png.person_2", "two_1.png.person_3"]  # the first call's
    summary = later.finish(0.0).to_dict()

    assert threads[:3] == ["MainThread"] * 3 and set(threads[3:]) == {"bodyfit-writer_0"}
    assert summary["counts"]["fitted"] == 3 and set(summary["failed"]) == {"two_2.png.person_4", "two_2.png.person_5"}
    assert "writing outputs failed" in summary["failed"]["two_2.png.person_5"]
    for s in scenes[:2]:
        for name in [p.name for p in (tmp_path / "now").glob(f"{s.key}*")]:
            a, b = tmp_path / "now" / name, tmp_path / "later" / name
            if name.endswith(".npz"):
                x, y = np.load(a), np.load(b)
                assert sorted(x.files) == sorted(y.files) and all(np.array_equal(x[k], y[k]) for k in x.files)
            elif name.endswith(".png"):
                np.testing.assert_array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
            else:
                assert a.read_bytes() == b.read_bytes(), name
