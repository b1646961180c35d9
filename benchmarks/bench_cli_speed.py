"""Time `run_fit.py` end to end on a folder of OpenPose frames with images, and where the time goes.

    OMP_NUM_THREADS=1 python benchmarks/bench_cli_speed.py --frames 24 --batch-size 12
    OMP_NUM_THREADS=1 python benchmarks/bench_cli_speed.py --checkout /tmp/cli_before --checkout .

The frames are the two players of `tests/data/keypoints/openpose_basketball1.json` (BODY_25) repeated
N times with 1.5 px of Gaussian jitter on every confident point, each with a copy of
`examples/basketball1.png` (640x480) as its image. Each `--checkout` (a tree of this repository, e.g. a
`git worktree` of an older commit) runs `run_fit.py FOLDER --out TMP --images IMAGES --focal 1000
--batch-size B --quiet` in a fresh process, in turn, `--rounds` times. The child process wraps a few
functions of that checkout with timers: model load (`fitting.pipeline.build_fitter`), fitting (`Fitter.fit_frames`),
overlays (`body.render.render_overlay`, or `OverlayRenderer.render` where the checkout has it; the CLI
calls one of the two) and writes (`write_npz`, `write_obj`, `write_image` as
`fitting.outputs` or, where it is a package, its modules call them, and `obj_faces` where the writer has it).
Total: the child's wall time; other: the rest (interpreter start and imports, reading JSON and images, posing
the meshes, report page).
Prints one markdown row per run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.fit_data import jittered_openpose_frames  # noqa: E402

DETECTIONS = ROOT / "tests" / "data" / "keypoints" / "openpose_basketball1.json"
IMAGE = ROOT / "examples" / "basketball1.png"
PARTS = {
    "model load": [("fitting.pipeline", "build_fitter")],
    "fitting": [("fitting.fitter", "Fitter.fit_frames")],
    "overlays": [("body.render", "render_overlay"), ("body.render", "OverlayRenderer.render")],
    "writes": [
        *[("fitting.outputs", name) for name in ("write_npz", "write_obj", "write_image")],  # before the package
        ("fitting.outputs.npz", "write_npz"),
        ("fitting.outputs.writer", "write_obj"),
        ("fitting.outputs.writer", "write_image"),
        ("fitting.outputs.writer", "obj_faces"),  # the OBJs' face lines, formatted once a run where it has it
    ],
}


def make_frames(folder: Path, frames: int, seed: int = 0) -> tuple[Path, Path]:
    """`frames` OpenPose JSON files (the same detections with jitter) and their images; returns both folders."""
    json_dir, image_dir = folder / "json", folder / "images"
    image_dir.mkdir(parents=True)
    for path in jittered_openpose_frames(DETECTIONS, json_dir, frames, point_px=1.5, seed=seed):
        shutil.copy(IMAGE, image_dir / f"{path.name[: -len('_keypoints.json')]}.png")
    return json_dir, image_dir


def _timed(totals: dict[str, float], part: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[part] += time.perf_counter() - start

    return wrapper


def child(checkout: Path, report: Path, argv: list[str]) -> int:
    """Run `run_fit.main(argv)` from `checkout` with the PARTS timed; their totals go to `report` (JSON)."""
    import importlib

    sys.path.insert(0, str(checkout))
    totals: dict[str, float] = defaultdict(float)
    for part, targets in PARTS.items():
        for module_name, attr in targets:
            try:
                owner = importlib.import_module(module_name)
            except ModuleNotFoundError:  # older checkouts lack some (fitting.outputs.npz)
                continue
            *path, name = attr.split(".")
            for step in path:
                owner = getattr(owner, step, None)
            if hasattr(owner, name):  # older checkouts lack some (OverlayRenderer)
                setattr(owner, name, _timed(totals, part, getattr(owner, name)))
    run_fit = importlib.import_module("run_fit")
    code = run_fit.main(argv)
    report.write_text(json.dumps(totals))
    return code


def measure(checkout: Path, json_dir: Path, image_dir: Path, batch_size: int, overrides: list[str]) -> dict[str, float]:
    """One run of `checkout`'s CLI on the frames: total seconds and the timed parts."""
    with tempfile.TemporaryDirectory() as tmp:
        out, report = Path(tmp) / "out", Path(tmp) / "parts.json"
        argv = [str(json_dir), "--out", str(out), "--images", str(image_dir), "--focal", "1000"]
        argv += ["--batch-size", str(batch_size), "--quiet", *overrides]
        cmd = [sys.executable, __file__, "--child", str(checkout), str(report), "--", *argv]
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
        total = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{checkout}: run_fit.py failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        fitted = json.loads((out / "summary.json").read_text())["counts"]["fitted"]
        return {"total": total, "fitted": fitted, **json.loads(report.read_text())}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[5:]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=12, help="people per batch (two per frame here)")
    parser.add_argument("--checkout", type=Path, action="append", help="repository trees to time (default: this one)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--override", action="append", default=[], help="KEY=VALUE for every run (output.overlay_scale=0.5)"
    )
    args = parser.parse_args()
    checkouts = [c.resolve() for c in args.checkout or [ROOT]]
    with tempfile.TemporaryDirectory() as tmp:
        json_dir, image_dir = make_frames(Path(tmp), args.frames)
        print(f"{args.frames} frames, 2 people each, batch size {args.batch_size} {' '.join(args.override)}; seconds")
        print("| round | checkout | load before | total | frames/s | " + " | ".join(PARTS) + " | other |")
        print("|---" * (6 + len(PARTS)) + "|")
        for r in range(args.rounds):
            for checkout in checkouts:
                load = os.getloadavg()[0]
                t = measure(checkout, json_dir, image_dir, args.batch_size, args.override)
                parts = [t.get(p, 0.0) for p in PARTS]
                row = [str(r + 1), str(checkout), f"{load:.2f}", f"{t['total']:.1f}", f"{args.frames / t['total']:.2f}"]
                cells = [f"{v:.1f}" for v in (*parts, t["total"] - sum(parts))]
                print("| " + " | ".join(row + cells) + " |", flush=True)


if __name__ == "__main__":
    main()
