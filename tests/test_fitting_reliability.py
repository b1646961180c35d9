"""A run that never dies, never lies and never deletes: a folder of broken and colliding inputs
end to end, and every bad command-line value refused up front."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import run_fit
from tests.conftest import PHOTOS

ROOT = Path(__file__).resolve().parents[1]
FAST = [
    "stages.camera.max_iter=4",
    "optimizer.max_iter=4",
    "schedule=[camera,body1,body5]",
    "output.mesh=false",
    "output.max_reprojection=100",  # four iterations leave some fits far off; plumbing only
]


def _messy_folder(folder: Path, images: Path) -> None:
    """Good photos, colliding names, tiny and broken images, a broken link and a video."""
    folder.mkdir()
    photos = {n: cv2.imread(str(images / n)) for n in ("basketball1.png", "basketball2.png", "astronaut.jpg")}
    photos = {Path(n).stem: image for n, image in photos.items()}
    cv2.imwrite(str(folder / "x.jpg"), photos["basketball1"])
    cv2.imwrite(str(folder / "x.png"), photos["basketball2"])
    cv2.imwrite(str(folder / "x.bmp"), photos["astronaut"])
    cv2.imwrite(str(folder / "clip_000000.jpg"), photos["basketball2"])
    video = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for name in ("basketball1", "basketball1", "basketball2"):
        video.write(photos[name])
    video.release()
    for w, h in ((1, 1), (10, 10), (1, 2000)):
        cv2.imwrite(str(folder / f"tiny_{w}x{h}.png"), np.full((h, w, 3), 128, np.uint8))
    cv2.imwrite(str(folder / "grey.png"), np.full((240, 320, 3), 90, np.uint8))
    (folder / "random.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    png = cv2.imencode(".png", photos["basketball1"])[1].tobytes()
    jpg = cv2.imencode(".jpg", photos["basketball1"])[1].tobytes()
    (folder / "truncated.png").write_bytes(png[: len(png) // 3])
    (folder / "truncated.jpg").write_bytes(jpg[:200])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "gone.jpg").symlink_to(folder / "nowhere.jpg")


def test_a_folder_of_broken_and_colliding_inputs(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _messy_folder(src, PHOTOS)
    cmd = [sys.executable, str(ROOT / "run_fit.py"), str(src), "--out", str(out), "--quiet", *FAST]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=ROOT, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # some items failed; no native crash (139/134)
    summary = json.loads((out / "summary.json").read_text())
    fitted = {key.split(".person_")[0] for key in summary["fitted"]}  # the basketball frames show two men
    # every good item under its own key: three photos named x, an image named like a video frame
    assert {"x.jpg", "x.png", "x.bmp", "clip_000000.jpg"} <= fitted
    assert {"clip.avi/000000", "clip.avi/000002"} <= fitted
    (x_png,) = sorted(out.glob("x.png.person_0.npz")) or [out / "x.png.npz"]
    with np.load(x_png) as f:
        assert str(f["input"]).endswith("x.png") and tuple(f["image_size"]) == (640, 480)
    with np.load(out / "x.bmp.npz") as f:
        assert tuple(f["image_size"]) == (512, 512)  # the astronaut, not basketball1's fit
    # every bad one is reported with its reason
    reported = {**summary["skipped"], **summary["failed"]}
    for name in (
        "tiny_1x1.png",
        "tiny_10x10.png",
        "tiny_1x2000.png",
        "grey.png",
        "random.jpg",
        "truncated.png",
        "truncated.jpg",
        "empty.jpg",
        "gone.jpg",
    ):
        assert name in reported, name
    assert "broken link" in reported["gone.jpg"]
    assert set(summary["failed"]) >= {"random.jpg", "truncated.png", "truncated.jpg", "empty.jpg"}
    log = (out / "run.log").read_text()
    assert "Traceback" in log and "random.jpg" in log
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporaries, no lock left


@pytest.mark.parametrize(
    "args, named",
    [
        (["--device", "foo"], "device"),
        (["--device", "cuda:abc"], "device"),
        (["threads=-1"], "threads"),
        (["batch_size=abc"], "batch_size"),
        (["--batch-size", "0"], "batch_size"),
        (["--batch-size", "-3"], "batch_size"),
        (["--focal", "-500"], "camera.focal"),
        (["--focal", "0"], "camera.focal"),
        (["--focal", "nan"], "camera.focal"),
        (["optimizer.max_iter=-1"], "optimizer.max_iter"),
        (["body.gender=alien"], "body.gender"),
        (["camera.fov_deg=0"], "camera.fov_deg"),
        (["keypoints.person=nonsense"], "keypoints.person"),
        (["--images", "/no/such/folder"], "--images"),
        (["--config", "BROKEN"], "broken.yaml"),
        (["--out-is-a-file"], "is a file"),
    ],
)
def test_every_bad_value_exits_2_with_one_line_before_any_work(tmp_path, capsys, args, named):
    image = ROOT / "examples" / "basketball1.png"
    out = tmp_path / "out"
    if args == ["--config", "BROKEN"]:
        (tmp_path / "broken.yaml").write_text("camera: {focal: [1, 2\n")
        args = ["--config", str(tmp_path / "broken.yaml")]
    if args == ["--out-is-a-file"]:
        out.write_text("a file")
        args = []
    try:
        code = run_fit.main([str(image), "--out", str(out), "--quiet", *args])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and named in err and "Traceback" not in err, err
    assert not out.is_dir()  # refused before any work
