"""`load_motion`: one entry point for BVH, ASF/AMC and AMASS files."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from prior.data.amass import read_amass
from prior.data.asf_amc import read_amc, read_asf
from prior.data.bvh import read_bvh, sidecar_fps
from prior.data.motion import Motion, MotionFormatError, SourceMotion
from prior.data.retarget import retarget
from prior.data.skeleton_maps import CMU_LENGTH_UNIT, SkeletonMap, find_skeleton_map

AMC_DEFAULT_FPS = 120.0  # CMU and HDM05 capture rate; AMC files do not state it
MOTION_SUFFIXES = (".bvh", ".amc", ".npz")
# BVH length units (metres per unit) tried by `detect_units`, and the head-to-ankle bone chain
# of an adult (1.39-1.69 m over the CMU and HDM05 ASF skeletons, 1.54-1.72 m for SNU's rigs).
# Neighbouring units differ by 2.2x or more, so a tolerance of 1.35x picks one unambiguously.
LENGTH_UNITS = (1.0, 0.01, 0.001, 0.0254, CMU_LENGTH_UNIT)
TYPICAL_CHAIN_M = 1.5
UNIT_TOLERANCE = 1.35


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
    skeleton_map: source-to-SMPL-X joint map; the shipped maps (`SKELETON_MAPS`: CMU ASF,
        CMU Daz / MotionBuilder / 3ds Max / ASF-named BVH, SNU woody and 22-joint, FAIR, ReActIdle) are
        matched by joint names when None. length_scale: metres per BVH unit; when None, the
        map's units, else detected from the skeleton's size (`detect_units`); maps whose
        files come in arbitrary units (units="typical") are scaled to a typical adult.
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
        src = read_bvh(path, length_scale=1.0)
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
    if skeleton_map is not None:
        smap, renames = skeleton_map, skeleton_map.resolve(src.names, src.parents) or {}
    else:
        found = find_skeleton_map(src.names, src.parents)
        if found is None:
            raise MotionFormatError(
                path, f"no shipped joint map fits this skeleton ({', '.join(src.names[:8])}, ...): pass skeleton_map"
            )
        smap, renames = found
    if renames:
        src.names = [renames.get(n, n) for n in src.names]
        src.hinge_axes = {renames.get(n, n): a for n, a in src.hinge_axes.items()}
    missing = sorted(smap.required() - set(src.names))
    if missing:
        raise MotionFormatError(path, f"skeleton map {smap.name} needs joints {missing} the file lacks")
    if source == "bvh":
        scale = length_scale or (TYPICAL_CHAIN_M / skeleton_height(src, smap) if smap.units == "typical" else None)
        scale = scale or smap.units or detect_units(src, smap)
        src.offsets = src.offsets * scale
        src.root_pos = src.root_pos * scale
    return retarget(src, smap, source=source, subject=path.parent.name, path=str(path))


def skeleton_height(src: SourceMotion, smap: SkeletonMap) -> float:
    """Length (source units) of the bone chain from the head joint down to the ankles (mean of
    both sides): a size measure that does not depend on the rest pose."""
    lengths = np.linalg.norm(src.offsets, axis=-1)

    def chain(joint: int) -> list[int]:
        out = []
        while joint >= 0:
            out.append(joint)
            joint = src.parents[joint]
        return out

    head = chain(src.index(smap.source_of("head")))
    total = 0.0
    for side in ("left", "right"):
        ankle = chain(src.index(smap.source_of(f"{side}_ankle")))
        common = set(head) & set(ankle)
        total += sum(lengths[j] for j in head + ankle if j not in common)
    return total / 2


def detect_units(src: SourceMotion, smap: SkeletonMap) -> float:
    """Metres per source unit: the usual unit (m, cm, mm, inch, CMU unit) under which the head-
    to-ankle chain (`skeleton_height`) is nearest to an adult's TYPICAL_CHAIN_M, when one gives
    a chain within UNIT_TOLERANCE of it; otherwise the scale that gives exactly TYPICAL_CHAIN_M
    (a skeleton in arbitrary units, such as FAIR's)."""
    height = skeleton_height(src, smap)
    if not height > 0:
        return 1.0
    best = min(LENGTH_UNITS, key=lambda u: abs(np.log(height * u / TYPICAL_CHAIN_M)))
    if abs(np.log(height * best / TYPICAL_CHAIN_M)) <= np.log(UNIT_TOLERANCE):
        return best
    return TYPICAL_CHAIN_M / height


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
