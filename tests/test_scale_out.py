"""The fitting run on Ray workers (fitting.scale_out, run_fit.py --ray) against the local run, on a local
Ray cluster of two workers started here (few iterations)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import ray

from benchmarks.fit_data import jittered_openpose_frames
from fitting.config import load_config
from fitting.inputs import Item
from fitting.pipeline import run
from fitting.scale_out import ScaleOutError, run_on_ray, units
from run_fit import main
from tests.conftest import FAST_FIT

ROOT = Path(__file__).resolve().parents[1]
BASKETBALL = ROOT / "tests" / "data" / "keypoints" / "openpose_basketball1.json"  # two people
# two workers of one thread, and the local run on one thread: the same fits
SETTINGS = [*FAST_FIT, "camera.image_size=[640,480]", "output.report=false", "threads=1"]
SETTINGS += ["ray.workers=2", "ray.threads_per_worker=1"]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of two CPUs, for the module."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture
def frames(tmp_path) -> Path:
    """Four OpenPose frames of the two basketball players, each moved a few pixels, and two bad
    items: a truncated file (failed) and a frame without people (skipped)."""
    folder = tmp_path / "in"
    jittered_openpose_frames(BASKETBALL, folder, 4, person_px=3.0)
    text = BASKETBALL.read_text()
    (folder / "a_truncated_keypoints.json").write_text(text[: len(text) // 2])
    (folder / "z_nobody_keypoints.json").write_text(json.dumps({"version": 1.3, "people": []}))
    return folder


def _outputs(out: Path) -> dict[str, Path]:
    return {str(p.relative_to(out)): p for p in sorted(out.rglob("*")) if p.is_file()}


def _summary(out: Path) -> dict:
    saved = json.loads((out / "summary.json").read_text())
    saved.pop("seconds")
    return saved


def test_two_ray_workers_write_what_the_local_run_writes(tmp_path, frames, cluster, caplog):
    cfg = load_config(None, SETTINGS)
    local = run(frames, tmp_path / "local", cfg, progress=False)
    caplog.set_level(logging.INFO)
    caplog.clear()
    # through the command line: two workers of one thread on the cluster this process joined
    code = main([str(frames), "--out", str(tmp_path / "ray"), "--ray", "--quiet", *SETTINGS])
    assert code == 1  # the truncated file failed, as in the local run
    assert sorted(local.fitted) == [f"frame_{i:04d}.person_{p}" for i in range(4) for p in (0, 1)]

    mine, theirs = _outputs(tmp_path / "ray"), _outputs(tmp_path / "local")
    assert list(mine) == list(theirs)
    npz = [k for k in mine if k.endswith(".npz")]
    assert len(npz) == 8
    for name in npz:
        with np.load(mine[name]) as a, np.load(theirs[name]) as b:
            assert a.files == b.files
            for key in a.files:
                if a[key].dtype.kind in "fc":
                    np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=f"{name} {key}")
                elif key == "loss_terms":  # JSON of floats whose last digits vary with the batch (locally too)
                    x, y = json.loads(str(a[key])), json.loads(str(b[key]))
                    assert x.keys() == y.keys() and np.allclose(list(x.values()), list(y.values()), rtol=1e-5)
                else:
                    assert np.array_equal(a[key], b[key]), f"{name} {key}"
    assert _summary(tmp_path / "ray") == _summary(tmp_path / "local")
    assert _summary(tmp_path / "ray")["counts"] == {"fitted": 8, "already_done": 0, "skipped": 1, "failed": 1}
    # the two units (a_truncated + frame_0000-0001, frame_0002-0003 + z_nobody) were fitted by two worker processes,
    # whose log lines, tracebacks included, reached this run's run.log
    workers = {r.process for r in caplog.records if r.name.startswith("fitting.outputs")}
    assert len(workers) == 2 and os.getpid() not in workers
    log = (tmp_path / "ray" / "run.log").read_text()
    assert "failed a_truncated" in log and "Traceback" in log and "skipped z_nobody" in log
    assert not [p for p in (tmp_path / "ray").iterdir() if p.name.startswith(".")]  # no temporaries, no lock

    # resume: a frame whose .npz is gone (a killed run) is the only one fitted again, and a local
    # rerun counts the Ray run's frames as its own (ray.* settings do not change a fit)
    (tmp_path / "ray" / "frame_0002.person_1.npz").unlink()
    again = run_on_ray(frames, tmp_path / "ray", cfg, progress=False)
    assert again.fitted == ["frame_0002.person_0", "frame_0002.person_1"]
    assert len(again.already_done) == 6
    local_cfg = load_config(None, [*FAST_FIT, "camera.image_size=[640,480]"])
    assert len(run(frames, tmp_path / "ray", local_cfg, progress=False).already_done) == 8


def test_more_workers_than_the_cluster_holds_is_refused(tmp_path, frames, cluster):
    cfg = load_config(None, [*SETTINGS, "ray.workers=3"])
    with pytest.raises(ScaleOutError, match=r"3 Ray worker\(s\).*need 3 CPUs.*has 2.*set ray.workers lower"):
        run_on_ray(frames, tmp_path / "out", cfg, progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.yaml", "run.log"]  # as a refused local run


def test_a_bad_ray_address_is_one_line(tmp_path, frames, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(frames), "--out", str(tmp_path / "out"), "--ray=my cluster"])
    assert exit_.value.code == 2
    assert "not a Ray address" in capsys.readouterr().err
    # an address where nothing listens (Ray would retry for minutes), in a process that joined no cluster
    done = subprocess.run(
        [sys.executable, str(ROOT / "run_fit.py"), str(frames), "--out", str(tmp_path / "out"), "--ray", "127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: --ray 127.0.0.1:9: nothing answers there (") and line.endswith("head running?")
    assert not (tmp_path / "out").exists()


def test_units_are_videos_alone_and_frames_in_batches_that_reach_every_worker():
    frames = [Item(f"f{i}.png", "image", Path(f"f{i}.png")) for i in range(5)]
    videos = [Item("a.mp4", "video", Path("a.mp4")), Item("seq", "sequence", Path("seq"))]
    items = [videos[0], *frames, videos[1]]

    def names(batch_size: int, workers: int) -> list[list[str]]:
        return [[i.name for i in unit] for unit in units(items, batch_size, workers)]

    f = [i.name for i in frames]
    assert names(2, 2) == [f[:2], f[2:4], f[4:], ["a.mp4"], ["seq"]]  # batches of batch_size
    assert names(64, 2) == [f[:3], f[3:], ["a.mp4"], ["seq"]]  # smaller, so that both workers get frames
    assert names(64, 1) == [f, ["a.mp4"], ["seq"]]
