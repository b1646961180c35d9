"""fitting.report: the page for a run with skipped and failed items and for an empty run, the viewer's
three.js and GLB embedded, and the page opened in headless Chromium (when it is on PATH).

The run folder is written by the project's own Writer from known bodies (fitting.synthetic views,
overlays rendered): an 8-frame video with a skipped and a failed frame, an image, an image with
two people, a skipped and a failed image.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from configs.files import write_npz
from fitting import report_viewer
from fitting.config import load_config, save_config
from fitting.fitter import FitResult
from fitting.outputs import Scene, Writer
from fitting.report import main, write_report
from fitting.report_plots import THUMB_SIZE
from fitting.synthetic import render_views
from fitting.targets import PersonTargets

FRAMES = 8
SKIPPED, FAILED = 3, 5  # video frames without a fit
NOISE_PX = 2.0
VIEWER = "document.getElementById('viewer')"
CANVAS = f"{VIEWER}.querySelector('canvas')"
BACKGROUND = (0x20, 0x26, 0x2E)  # the viewer's clear colour (report_viewer.js)


def _three_installed() -> bool:
    try:
        report_viewer.three_modules()
    except FileNotFoundError:
        return False
    return True


needs_three = pytest.mark.skipif(
    not _three_installed(), reason=f"three.js is not in {report_viewer.THREE_DIR}; scripts/setup.sh installs it"
)


def _write_run(out: Path, model) -> None:
    """The video's frames, `still.png`, `two.png` (two people) and a skipped and failed image, by the Writer."""
    rng = np.random.default_rng(1)
    n = FRAMES + 3
    t = np.arange(n)[:, None, None]
    pose = rng.normal(0, 0.1, (1, 21, 3)) + 0.3 * np.sin(0.4 * t + rng.uniform(0, 6, (1, 21, 3)))
    shape = np.repeat(rng.normal(0, 0.5, (1, model.num_shape)), n, 0).astype(np.float32)
    kw = dict(image_size=(240, 180), focal=260.0, distance=(4.0, 4.0), azimuth_deg=(-30.0, -30.0))
    views = render_views(model, pose.astype(np.float32), None, rng, shape=shape, **kw)
    results = []
    for i, frame in enumerate(views.frames):
        params = {k: v[i] for k, v in views.params.items()}
        points = frame.points["body25"][0][:, :2]
        projected = {"body25": points + rng.normal(0, NOISE_PX, points.shape).astype(np.float32)}
        results.append(FitResult(params, np.zeros(1), np.zeros(1, int), {}, np.zeros(3), projected=projected))
    people = [PersonTargets(0, frame) for frame in views.frames]
    scenes = [
        Scene(f"clip.mp4/{i:06d}", out / "clip.mp4", [people[i]], [results[i]])
        for i in range(FRAMES)
        if i not in (SKIPPED, FAILED)
    ]
    scenes.append(Scene("still.png", out / "still.png", [people[FRAMES]], [results[FRAMES]]))
    two = [PersonTargets(0, views.frames[FRAMES + 1]), PersonTargets(1, views.frames[FRAMES + 2])]
    scenes.append(Scene("two.png", out / "two.png", two, results[FRAMES + 1 :]))
    cfg = load_config(None, ["output.mesh=false", "output.max_reprojection=100"])
    save_config(cfg, out / "config.yaml")
    writer = Writer(out, model, cfg)
    writer.write(scenes)
    writer.skip(f"clip.mp4/{SKIPPED:06d}", "no person found")
    writer.fail(f"clip.mp4/{FAILED:06d}", "fit rejected: reprojection error 90 px (60 % of the person's height)")
    writer.skip("empty.png", "no person found")
    writer.fail("broken.jpg", "ValueError: <truncated> image")
    write_npz(out / "clip.mp4" / "keypoints.npz", frame_index=np.arange(FRAMES), people=np.ones(FRAMES, np.int64))
    writer.finish(1.5)


@pytest.fixture(scope="module")
def run(anny_body, tmp_path_factory) -> Path:
    """The run folder with its report written."""
    out = tmp_path_factory.mktemp("report") / "out"
    _write_run(out, anny_body)
    write_report(out)
    return out


def test_report_lists_counts_items_and_reasons(run):
    page = (run / "report.html").read_text()
    assert re.search(
        r"<td class=\"num\">9</td><td class=\"num\">0</td><td class=\"num\">2</td><td class=\"num\">2", page
    )
    for key, status in [("still.png", "fitted"), ("two.png.person_1", "fitted"), ("empty.png", "skipped")]:
        assert re.search(rf"<td>{re.escape(key)}</td><td class=\"{status}\">", page), key
    assert "ValueError: &lt;truncated&gt; image" in page and "no person found" in page
    assert f'clip.mp4/{FAILED:06d}</td><td class="failed">failed</td><td>fit rejected' in page
    px = float(np.load(run / "still.png.npz")["reprojection_px"])
    assert 0.5 * NOISE_PX < px < 3 * NOISE_PX and f'<td class="num">{px:.2f}</td>' in page
    assert re.search(r"(src|href)=\"https?:", page) is None  # nothing is fetched from the network


def test_report_pictures_are_small_copies(run):
    page = (run / "report.html").read_text()
    thumbs = sorted((run / "report_files" / "thumbs").glob("*.jpg"))
    names = {p.name for p in thumbs}
    assert {"still.png.jpg", "two.png.jpg"} <= names and sum(n.startswith("clip.mp4_") for n in names) == FRAMES - 2
    for path in thumbs:
        assert f'src="report_files/thumbs/{path.name}"' in page
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.width <= THUMB_SIZE[0] and image.height <= THUMB_SIZE[1]
    with Image.open(run / "report_files" / "plots" / "clip.mp4.png") as plot:
        assert plot.format == "PNG" and plot.width > 400
    assert 'src="report_files/plots/clip.mp4.png"' in page


@needs_three
def test_report_embeds_the_viewer_and_copies_three(run):
    page = (run / "report.html").read_text()
    glb = run / "clip.mp4" / "motion.glb"  # exported for the viewer: the first video
    embedded = re.search(r'<script type="application/octet-stream" id="bodyfit-glb">([^<]+)</script>', page)
    assert embedded and base64.b64decode(embedded.group(1)) == glb.read_bytes()
    imports = re.search(r'<script type="importmap">(.+?)</script>', page).group(1)
    assert '"three": "data:text/javascript;base64,' in imports and "GLTFLoader.js" in imports
    copied = {
        p.relative_to(run / "report_files" / "three").as_posix() for p in (run / "report_files" / "three").rglob("*")
    }
    assert {"LICENSE", "build/three.module.min.js", "build/three.core.min.js"} <= copied
    assert "examples/jsm/utils/BufferGeometryUtils.js" in copied  # imported by GLTFLoader


def test_report_without_three_says_so(run, tmp_path, monkeypatch):
    copy = tmp_path / "out"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("report*"))
    monkeypatch.setattr(report_viewer, "THREE_DIR", tmp_path / "none")
    page = write_report(copy).read_text()
    assert "No 3D view: three.js is not installed" in page and "importmap" not in page
    assert "<td>still.png</td>" in page


def test_report_of_an_empty_run(anny_body, tmp_path):
    cfg = load_config(None, [])
    Writer(tmp_path, anny_body, cfg).finish(0.0)
    page = write_report(tmp_path).read_text()
    assert "No items: this run had no inputs." in page and "No 3D view:" in page
    assert page.count('<td class="num">0</td>') == 4
    (tmp_path / "summary.json").unlink()  # a run stopped before its summary: the same page
    assert "No items" in write_report(tmp_path).read_text()


def test_report_refuses_a_missing_folder(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing: no such folder" in err


@needs_three
def test_report_in_chromium(run, tmp_path):
    """The page opened from the file system: the viewer shows the body, paused, and the page logged no errors."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not on PATH (Debian: apt-get install chromium; scripts/ci_packages.sh)")
    from tests.chromium import Chromium

    browser = Chromium(exe, tmp_path / "profile")
    try:
        browser.page("Page.navigate", url=(run / "report.html").resolve().as_uri())
        browser.wait_for("window.bodyfitViewer && window.bodyfitViewer.ready", timeout=90)
        viewer = "window.bodyfitViewer"
        assert browser.evaluate(f"{viewer}.sequence && {viewer}.playing()")
        assert browser.evaluate(f"{VIEWER}.querySelector('button').click(), {viewer}.playing()") is False
        assert browser.evaluate(f"{VIEWER}.querySelector('button').click(), {viewer}.playing()") is True
        slider = f"{VIEWER}.querySelector('input')"  # dragged to the first frame: paused there
        browser.evaluate(f"{slider}.value = 0, {slider}.dispatchEvent(new Event('input'))")
        browser.next_frames()
        assert browser.evaluate(f"{viewer}.playing()") is False
        assert browser.evaluate(f"{VIEWER}.querySelector('.status').textContent").startswith("0.00 /")
        png = browser.screenshot()
        canvas = browser.evaluate(f"(r => [r.left, r.top, r.right, r.bottom])({CANVAS}.getBoundingClientRect())")
        box = browser.evaluate("window.bodyfitViewer.box()")
        errors = browser.errors()
    finally:
        browser.close()
    shot = tmp_path / "report.png"
    shot.write_bytes(png)
    print(f"report screenshot: {shot}")
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    x0, y0, x1, y1 = (round(v) for v in canvas)
    view = pixels[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2]  # inside the rounded corners
    assert np.abs(view[5, 5] - BACKGROUND).max() <= 2
    drawn = np.abs(view - BACKGROUND).max(-1) > 40  # the grid is within 32 of the background
    bx0, by0, bx1, by1 = (round(v) - 2 for v in box)
    inside = np.zeros_like(drawn)
    inside[max(by0, 0) : by1, max(bx0, 0) : bx1] = True
    assert 0.01 < inside.mean() < 0.5, box  # the body is framed, not the whole canvas
    rows, cols = np.nonzero(drawn & inside)
    span = ((np.ptp(cols) + 1) / (bx1 - bx0), (np.ptp(rows) + 1) / (by1 - by0)) if len(rows) else (0, 0)
    print(
        f"body box {box}: {drawn[inside].mean():.1%} of it drawn, spanning {span[0]:.0%} x {span[1]:.0%} of it; "
        f"{drawn[~inside].mean():.2%} drawn outside"
    )
    assert drawn[inside].mean() > 0.08 and min(span) > 0.5 and drawn[~inside].mean() < 0.005
    assert errors == []
