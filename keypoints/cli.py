"""Command line: `python -m keypoints INPUT --out DIR`.

INPUT is an image, a video or a folder of them. Writes OpenPose JSON per image
(`<stem>_keypoints.json`) or per video frame (`<stem>_<frame:06d>_keypoints.json`),
an overlay PNG per image or MP4 per video, and `summary.json`. A file that
cannot be read, or on which MediaPipe crashes (it runs in a worker process
that is restarted), is reported and the others are still processed (exit code 1).
Skeletons dropped by the sanity gates (keypoints.gates) are listed in the summary,
and so are people whose skeleton is MoveNet's own COCO-17 points (BlazePose found
nobody in their box; "MoveNet" on the overlay).

`python -m keypoints --compare FOLDER --out DIR` runs BlazePose Full,
Heavy and the top-down crop pipeline on each image and writes side-by-side
overlays (`<stem>_compare.png`) and a table of people found and time per image.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from tqdm import tqdm

from .draw import draw_keypoints
from .files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, atomic_write_json, read_image, write_image
from .isolated import IsolatedDetector
from .openpose_json import write_openpose
from .quiet import set_verbose
from .types import Keypoints, KeypointsError
from .video import read_frames, video_info, video_writer


@dataclass
class Summary:
    frames: int = 0
    seconds: float = 0.0
    no_person: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, list[str]] = field(default_factory=dict)
    movenet: dict[str, int] = field(default_factory=dict)  # frame -> people with MoveNet's points only

    def add(self, name: str, kp: Keypoints) -> None:
        self.frames += 1
        if kp.num_people == 0:
            self.no_person.append(name)
        if kp.rejected:
            self.rejected[name] = list(kp.rejected)
        if kp.origins and "movenet" in kp.origins:
            self.movenet[name] = kp.origins.count("movenet")

    def report(self) -> str:
        ms = 1000 * self.seconds / max(self.frames, 1)
        lines = [
            f"{self.frames} frame(s) in {self.seconds:.1f} s ({ms:.0f} ms/frame); "
            f"{len(self.no_person)} without a person; "
            f"{sum(map(len, self.rejected.values()))} skeleton(s) rejected by the sanity gates; "
            f"{sum(self.movenet.values())} person(s) with MoveNet's COCO-17 points only"
        ]
        lines += [f"  MoveNet points only: {n} ({k} person(s))" for n, k in list(self.movenet.items())[:20]]
        lines += [f"  no person: {n}" for n in self.no_person[:20]]
        if len(self.no_person) > 20:
            lines.append(f"  ... and {len(self.no_person) - 20} more (see summary.json)")
        rejected = [f"  rejected in {n}: {r}" for n, rs in self.rejected.items() for r in rs]
        lines += rejected[:20]
        if len(rejected) > 20:
            lines.append(f"  ... and {len(rejected) - 20} more rejections (see summary.json)")
        lines += [f"  FAILED {name}: {why}" for name, why in self.failed.items()]
        return "\n".join(lines)


def list_inputs(path: Path) -> list[Path]:
    """The image and video files to process: `path` itself, or a folder's
    (not recursive), sorted by name."""
    if path.is_dir():
        return sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    if not path.exists():
        raise KeypointsError(f"{path}: no such file or folder")
    return [path]


def _image(path: Path, out: Path, detector: IsolatedDetector, summary: Summary, overlay: bool) -> None:
    image = read_image(path)
    kp = detector(image, str(path))
    write_openpose(kp, out / f"{path.stem}_keypoints.json")
    if overlay:
        write_image(out / f"{path.stem}_overlay.png", draw_keypoints(image, kp))
    summary.add(path.name, kp)


def _video(path: Path, out: Path, detector: IsolatedDetector, summary: Summary, overlay: bool) -> None:
    """Track the whole video in the worker, then write its frames' files (none if it failed)."""
    info = video_info(path)
    with tqdm(total=info.frame_count or None, desc=path.name, unit="frame", leave=False) as progress:
        kps = detector.track(path, on_frame=lambda kp: progress.update())
    for kp in kps:
        write_openpose(kp, out / f"{path.stem}_{kp.frame_index:06d}_keypoints.json")
        summary.add(f"{path.name}#{kp.frame_index}", kp)
    if overlay:
        with video_writer(out / f"{path.stem}_overlay.mp4", info.fps) as write_frame:
            for (_, _, frame), kp in zip(read_frames(path), kps):
                write_frame(draw_keypoints(frame, kp))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m keypoints", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input", type=Path, nargs="?", help="image, video, or folder of them")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--pose-only", action="store_true", help="body only: no hands or face (faster)")
    parser.add_argument(
        "--single", action="store_true", help="images: MediaPipe's one person, no people search (faster)"
    )
    parser.add_argument("--no-overlay", action="store_true", help="write JSON only")
    parser.add_argument(
        "--landmarks",
        choices=["heavy", "full"],
        default="heavy",
        help="BlazePose landmark model (default heavy; full when heavy is not installed)",
    )
    parser.add_argument(
        "--finder",
        choices=["auto", "movenet", "hog"],
        default="auto",
        help="person boxes for crops (auto: MoveNet when installed, else HOG)",
    )
    parser.add_argument(
        "--top-down", action="store_true", help="images: detect in a crop per person box only (no whole-image pass)"
    )
    parser.add_argument("--no-gates", action="store_true", help="keep skeletons that fail the sanity gates")
    parser.add_argument(
        "--compare", type=Path, metavar="FOLDER", help="run full, heavy and crops on FOLDER; side-by-side overlays"
    )
    parser.add_argument("--verbose", action="store_true", help="show MediaPipe's and TF Lite's own log lines")
    args = parser.parse_args(argv)
    if args.verbose:
        set_verbose(True)
    if args.compare is not None:
        from .compare import compare

        try:
            print(compare(args.compare, args.out))
        except KeypointsError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if args.input is None:
        parser.error("INPUT is required (or --compare FOLDER)")
    try:
        inputs = list_inputs(args.input)
    except KeypointsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = Summary()
    images = [p for p in inputs if p.suffix.lower() not in VIDEO_SUFFIXES]
    videos = [p for p in inputs if p.suffix.lower() in VIDEO_SUFFIXES]
    start = time.perf_counter()
    options = dict(
        holistic=not args.pose_only,
        find_people=not args.single,
        landmarks=args.landmarks,
        finder=args.finder,
        top_down=args.top_down,
        gates=not args.no_gates,
    )
    with IsolatedDetector(**options) as detector:
        for path in tqdm(images, desc="images", unit="image", disable=len(images) < 2):
            try:
                _image(path, args.out, detector, summary, not args.no_overlay)
            except (KeypointsError, cv2.error) as e:
                summary.failed[str(path)] = str(e)
        for path in videos:
            try:
                _video(path, args.out, detector, summary, not args.no_overlay)
            except (KeypointsError, cv2.error) as e:
                summary.failed[str(path)] = str(e)
    summary.seconds = time.perf_counter() - start
    atomic_write_json(
        args.out / "summary.json",
        {
            "frames": summary.frames,
            "seconds": round(summary.seconds, 3),
            "no_person": summary.no_person,
            "failed": summary.failed,
            "rejected": summary.rejected,
            "movenet_only": summary.movenet,
            "landmarks": detector.landmarks,
        },
    )
    print(summary.report())
    return 1 if summary.failed else 0
