"""Fit 3D bodies to images, folders, videos or OpenPose JSON: `python run_fit.py INPUT --out DIR`.

INPUT is an image, a video, a folder of images/videos, or a folder of OpenPose
`*_keypoints.json` files, e.g. from `python -m keypoints` (its overlays and
summary.json are ignored; add --images DIR for overlays and image sizes). With
--sequence, a folder of one video's OpenPose frames (NAME_<number>_keypoints.json)
is fitted as a video: tracked people, one shape per person, temporal terms, an
overlay MP4 when --images gives the frames.
Per frame: NAME.npz (axis-angle parameters, latent, camera, keypoints, stage
losses), NAME.obj (mesh in camera coordinates) and NAME_overlay.png; per video
an overlay MP4; per run config.yaml, summary.json and report.html (with
--export bvh,glb also BVH / glTF files per clip). Frames whose .npz exists
are skipped, so a killed run resumes where it stopped.

Settings: configs/fit.yaml, a --config YAML on top, then KEY=VALUE overrides,
e.g. `optimizer.max_iter=10 prior.kind=none`.

With --ray [ADDRESS] the same run goes to Ray workers (pip install 'bodyfit[ray]'):
on this machine (no ADDRESS), or on a running cluster (auto, ray://HOST:10001),
sized by ray.workers, ray.threads_per_worker and ray.gpus_per_worker
(docs/scale_out.md).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from functools import partial
from pathlib import Path

RAY_ADDRESS = re.compile(r"local|auto|ray://[\w.\-]+(:\d+)?|[\w.\-]+:\d+")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _ray_address(value: str) -> str:
    """A --ray ADDRESS: local, auto, ray://HOST[:PORT] or HOST:PORT."""
    if not RAY_ADDRESS.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a Ray address (local, auto, ray://HOST:10001 or HOST:6379)")
    return value


def _bare_ray(argv: list[str]) -> list[str]:
    """`--ray` followed by no address (an override, INPUT) means `--ray=local`, not that as its address."""
    return [
        "--ray=local" if a == "--ray" and i + 1 < len(argv) and not RAY_ADDRESS.fullmatch(argv[i + 1]) else a
        for i, a in enumerate(argv)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="image, video, folder of them, or folder of OpenPose JSON")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; reruns resume)")
    parser.add_argument("--images", type=Path, help="images of OpenPose JSON frames (matched by name)")
    parser.add_argument(
        "--sequence", action="store_true", help="INPUT is a folder of one video's OpenPose frames: fit them as a video"
    )
    parser.add_argument("--fps", type=float, help="frame rate of a --sequence (default 30), recorded with its motion")
    parser.add_argument("--config", type=Path, help="YAML with settings over configs/fit.yaml")
    parser.add_argument("--body", choices=("anny", "smplx"), help="body model (default anny)")
    parser.add_argument("--model-path", help="SMPL-X model file or folder (with --body smplx)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ...")
    parser.add_argument("--batch-size", type=int, help="images fitted together")
    parser.add_argument(
        "--focal", metavar="F[,FY]", help="focal length in px (f, or fx,fy); default from a 45 deg field of view"
    )
    parser.add_argument(
        "--export", metavar="FORMATS", help="also write bvh and/or glb per clip at the end (e.g. bvh,glb)"
    )
    parser.add_argument("--overwrite", action="store_true", help="refit frames that --out holds from other settings")
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        type=_ray_address,
        metavar="ADDRESS",
        help="fit on Ray workers: on this machine (no ADDRESS), or a cluster's (auto, ray://HOST:10001)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="log every step, and the detectors' own messages")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    args = parser.parse_intermixed_args(_bare_ray(sys.argv[1:] if argv is None else list(argv)))

    if args.fps is not None and not args.sequence:
        parser.error("--fps is for a --sequence of OpenPose frames (a video's own frame rate is used)")
    if args.fps is not None and not 0 < args.fps < 10000:
        parser.error(f"--fps takes a frame rate above 0, got {args.fps:g}")
    from fitting.config import ConfigError, load_config
    from fitting.export import ExportError, parse_formats

    overrides = list(args.overrides)
    if args.export is not None:
        try:
            overrides.append(f"output.export=[{','.join(parse_formats(args.export))}]")
        except ExportError as e:
            parser.error(str(e).replace("--format", "--export"))
    for key, value in (
        ("body.model", args.body),
        ("body.model_path", args.model_path),
        ("device", args.device),
        ("batch_size", args.batch_size),
    ):
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.focal:
        try:
            focal = [float(f) for f in args.focal.split(",")]
        except ValueError:
            focal = []
        if len(focal) not in (1, 2):
            parser.error(f"--focal takes f or fx,fy in pixels, got {args.focal!r}")
        overrides.append(f"camera.focal={focal[0] if len(focal) == 1 else focal}")
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as e:
        parser.error(str(e))

    import keypoints
    from fitting.pipeline import run

    fit = run
    if args.ray is not None:
        from fitting.scale_out import run_on_ray

        fit = partial(run_on_ray, address=args.ray)

    if args.verbose:  # else BODYFIT_VERBOSE from the environment decides
        keypoints.set_verbose(True)
    console = logging.StreamHandler()
    console.setLevel(logging.INFO if args.verbose else logging.WARNING)
    logging.getLogger().addHandler(console)
    try:
        summary = fit(
            args.input,
            args.out,
            cfg,
            images=args.images,
            progress=not args.quiet,
            overwrite=args.overwrite,
            sequence_fps=(args.fps or 30.0) if args.sequence else None,
        )
    except (FileNotFoundError, ValueError) as e:  # missing input, model or prior files; bad device; busy --out; Ray
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary.report())
    print(f"outputs in {args.out} (summary.json, config.yaml, run.log)")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
