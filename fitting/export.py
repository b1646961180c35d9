"""Export a run's fits for animation tools: BVH skeletons and glTF (.glb) skinned bodies.

    python -m fitting.export DIR --format bvh[,glb] [--units m|cm]

For every track of every fitted video or sequence in DIR (its frames, in order) and
every person of a single image (a one-frame clip) it writes `DIR/clip.avi/motion.bvh` /
`.glb` (`motion.person_<id>.bvh` per track of a video with several) and `DIR/x.png.bvh` /
`.glb` (`x.png.person_<id>.bvh` per person of an image with several). See docs/export.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from fitting.export_bvh import UNITS, write_bvh
from fitting.export_motion import ExportError, find_clips, load_model, load_motion

FORMATS = ("bvh", "glb")
log = logging.getLogger(__name__)


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """'bvh,glb' (or a list) -> ("bvh", "glb"); ExportError for an unknown or missing format."""
    names = [f.strip().lower() for f in (text.split(",") if isinstance(text, str) else text) if f.strip()]
    unknown = [f for f in names if f not in FORMATS]
    if unknown or not names:
        raise ExportError(
            f"export format {', '.join(unknown) or 'missing'} is not supported; choose from {', '.join(FORMATS)} "
            "(e.g. --format bvh,glb)"
        )
    return tuple(dict.fromkeys(names))


def export_run(out_dir: Path, formats: Sequence[str], units: str = "m") -> list[Path]:
    """Write the asked formats for every clip of the run folder `out_dir`; the files written.
    `units` ("m" or "cm") sets BVH lengths (glTF is metres by its specification).
    Raises ExportError (one line naming the file and the fix) for bad options or an unusable folder."""
    formats = parse_formats(formats)
    if units not in UNITS:
        raise ExportError(f"units {units!r} are not supported; choose from {', '.join(UNITS)}")
    out_dir = Path(out_dir)
    clips = find_clips(out_dir)
    model = load_model(out_dir, clips)
    written = []
    for clip in clips:
        motion = load_motion(model, clip)
        if "bvh" in formats:
            written.append(clip.stem.with_name(clip.stem.name + ".bvh"))
            write_bvh(written[-1], motion, units)
        if "glb" in formats:
            from fitting.export_gltf import write_glb

            written.append(clip.stem.with_name(clip.stem.name + ".glb"))
            write_glb(written[-1], motion, model)
        log.info("exported %s: %d fitted frames at %.3g fps", clip.name, len(motion.indices), motion.fps)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fitting.export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="output folder of a run_fit.py run")
    parser.add_argument("--format", default="bvh,glb", help="bvh, glb or both, comma-separated (default bvh,glb)")
    parser.add_argument("--units", default="m", help="BVH lengths: m (default) or cm")
    args = parser.parse_args(argv)
    try:
        written = export_run(args.folder, args.format, args.units)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
