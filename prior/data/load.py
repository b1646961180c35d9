"""`load_motion`: one entry point for BVH, ASF/AMC and AMASS files."""

from __future__ import annotations

import re
from pathlib import Path

from prior.data.amass import read_amass
from prior.data.asf_amc import read_amc, read_asf
from prior.data.bvh import read_bvh, sidecar_fps
from prior.data.motion import Motion, MotionFormatError, SourceMotion
from prior.data.retarget import retarget
from prior.data.skeleton_maps import SkeletonMap, find_skeleton_map

AMC_DEFAULT_FPS = 120.0  # CMU and HDM05 capture rate; AMC files do not state it
MOTION_SUFFIXES = (".bvh", ".amc", ".npz")


def load_motion(
    path: str | Path,
    asf: str | Path | None = None,
    *,
    fps: float | None = None,
    skeleton_map: SkeletonMap | None = None,
    length_scale: float | None = None,
) -> Motion:
    """Read a .bvh, .amc (with its .asf) or AMASS .npz file as SMPL-X body poses.

    asf: the skeleton of an .amc; found beside it when None (see `find_asf`).
    fps: overrides the file's frame rate. For BVH the rate is the header's unless a
        `framerates.txt` beside the file (or one folder up) names its folder or stem;
        for AMC it is 120, or the `_<fps>` suffix of HDM05 names (HDM_bk_..._120.amc).
    skeleton_map: source-to-SMPL-X joint map; the shipped CMU maps are matched by joint
        names when None. length_scale: metres per BVH unit (guessed when None).
    The subject (for splits) is the file's folder name. Raises MotionFormatError (a
    ValueError naming the file and line) for corrupt, truncated or unknown files.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(path)
    if suffix == ".npz":
        motion = read_amass(path)
        if fps is not None:
            motion.fps = float(fps)
        return motion
    src: SourceMotion
    if suffix == ".bvh":
        src = read_bvh(path, length_scale=length_scale)
        src.fps = float(fps or sidecar_fps(path) or src.fps)
        source = "bvh"
    elif suffix == ".amc":
        skeleton = read_asf(asf if asf is not None else find_asf(path))
        match = re.fullmatch(r"HDM_.*_(\d+)", path.stem)
        src = read_amc(path, skeleton, fps=float(fps or (match and int(match.group(1))) or AMC_DEFAULT_FPS))
        source = "asf_amc"
    elif suffix == ".asf":
        raise MotionFormatError(path, "an .asf holds a skeleton, no motion: pass its .amc")
    else:
        raise MotionFormatError(path, f"unknown motion format {suffix!r} (expected .bvh, .amc or .npz)")
    smap = skeleton_map or find_skeleton_map(src.names)
    if smap is None:
        raise MotionFormatError(
            path, f"no shipped joint map fits this skeleton ({', '.join(src.names[:8])}, ...): pass skeleton_map"
        )
    missing = sorted(smap.required() - set(src.names))
    if missing:
        raise MotionFormatError(path, f"skeleton map {smap.name} needs joints {missing} the file lacks")
    return retarget(src, smap, source=source, subject=path.parent.name, path=str(path))


def find_asf(amc: str | Path) -> Path:
    """The .asf for an .amc: the one in its folder whose stem prefixes the .amc's longest
    (CMU 01/01.asf for 01_02.amc, HDM05 HDM_bk.asf for HDM_bk_..._120.amc), else the only one."""
    amc = Path(amc)
    candidates = sorted(p for p in amc.parent.iterdir() if p.suffix.lower() == ".asf")
    prefixed = [c for c in candidates if amc.stem.lower().startswith(c.stem.lower())]
    if prefixed:
        return max(prefixed, key=lambda c: len(c.stem))
    if len(candidates) == 1:
        return candidates[0]
    raise MotionFormatError(amc, f"cannot tell which .asf belongs to it ({len(candidates)} in its folder): pass asf=")
