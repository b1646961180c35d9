"""The real mocap that travels with the tests: short clips of the permissively licensed archives.

`tests/data/mocap/` holds small `.tar.xz` archives named and laid out like the full ones in
`../shared/data/mocap` (so every reader, the dataset builder and `tests.prior_data_mocap` take
either folder), with only MIT, Apache-2.0 and BSD-3-Clause clips and each archive's licence
file; the CMU and HDM05 archives stay out (their terms are not ours to pass on).
`tests/data/mocap/README.md` lists what is in them.

Rebuilt from the full archives with `python -m tests.mocap_bundle ../shared/data/mocap`.
"""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path
from typing import Sequence

BUNDLED_MOCAP = Path(__file__).resolve().parent / "data" / "mocap"

# archive -> {member: frames kept (None: all)}. Each archive's licence file is kept whole.
BUNDLE: dict[str, dict[str, int | None]] = {
    # MIT. Actor fair/fair1: a validation actor of the shipped VPoser and initialiser.
    "fair_bvh": {
        "LICENSE-or-SOURCE.txt": None,
        "fair1_dab.bvh": None,
        "fair1_jumping.bvh": None,
        "fair1_wave_hello.bvh": None,
        "fair1_zombie.bvh": None,
    },
    # BSD-3-Clause. Training actors snu_martial/p1..p3 (22 joints, arms listed before the head).
    "snu_martial_bvh": {
        "LICENSE-or-SOURCE.txt": None,
        "snu_martial_arts/s_001_3_1.bvh": None,
        "snu_martial_arts/s_001_3_2.bvh": None,
        "snu_martial_arts/s_005_3_1.bvh": None,
        "snu_martial_arts/s_005_3_2.bvh": None,
        "snu_martial_arts/s_018_1_1.bvh": None,
        "snu_martial_arts/s_024_2_3.bvh": None,
        "snu_martial_arts/s_020_1_2.bvh": None,
    },
    # Apache-2.0. One performer (snu/woody2) on the 20-joint rig (both hip orders) and the 26-joint one.
    "snu_woody2_bvh": {
        "LICENSE-or-SOURCE.txt": None,
        "Walking_rawmotion/woddy2_walk_straight_slow.bvh": 400,
        "woody2_Physics2/wd2_WalkSameSame05.bvh": None,
        "woody2_Samsung/wd2_tt_cut_strock_1.bvh": 400,
    },
    # MIT. ReActIdle performer 003 standing idle (19-joint Blender-style rig, metres, 24 fps).
    "reactidle_bvh": {
        "LICENSE-or-SOURCE.txt": None,
        "LICENSE.txt": None,
        "genuine/003_genuine.bvh": None,
    },
    # Apache-2.0. SNU's 22-joint rig with rest offsets along +x; opens with a held T-pose.
    "snu_basketball_bvh": {
        "LICENSE-or-SOURCE.txt": None,
        "snu_basketball/s_010_4_2.bvh": 450,
    },
}


def first_frames(text: str, frames: int) -> str:
    """A BVH text cut to its first `frames` frames (its Frames: line rewritten)."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().lower().startswith("frames:"))
    lines[at] = f"Frames: {frames}"
    return "\n".join(lines[: at + 2 + frames]) + "\n"


def build(full: Path, out: Path = BUNDLED_MOCAP) -> list[Path]:
    """Write the BUNDLE archives into `out` from the full archives in `full`; returns them."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for archive, members in BUNDLE.items():
        texts: dict[str, bytes] = {}
        with tarfile.open(full / f"{archive}.tar.xz") as tar:
            for info in tar:
                name = info.name.removeprefix(f"{archive}/")
                if info.isfile() and name in members:
                    data = tar.extractfile(info).read()
                    if members[name] is not None:
                        data = first_frames(data.decode("latin-1"), members[name]).encode("latin-1")
                    texts[name] = data
        if missing := sorted(set(members) - set(texts)):
            raise FileNotFoundError(f"{full / archive}.tar.xz lacks {missing}")
        target = out / f"{archive}.tar.xz"
        part = target.with_name(target.name + ".part")
        with tarfile.open(part, "w:xz", preset=9) as tar:
            for name in members:  # fixed order and metadata: the same bytes on every rebuild
                info = tarfile.TarInfo(f"{archive}/{name}")
                info.size, info.mode = len(texts[name]), 0o644
                tar.addfile(info, io.BytesIO(texts[name]))
        part.replace(target)
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("full", type=Path, help="the folder of the full mocap archives (../shared/data/mocap)")
    parser.add_argument("--out", type=Path, default=BUNDLED_MOCAP)
    args = parser.parse_args(argv)
    for path in build(args.full, args.out):
        print(f"{path}: {path.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
