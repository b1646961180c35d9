"""BVH reader: any skeleton, rotation channels in any order, End Sites kept as joints."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from prior.data.euler import euler_to_matrix
from prior.data.motion import MotionFormatError, SourceMotion

# Candidate length units (metres per file unit), picked by the rest skeleton's height.
_UNITS = (1.0, 0.0254, 0.01, 0.001)
_TYPICAL_HEIGHT_M = 1.7


class _Tokens:
    """Whitespace tokens of the HIERARCHY part with their 1-based line numbers."""

    def __init__(self, path: Path, lines: list[str]) -> None:
        self.path = path
        self.items = [(tok, n) for n, line in enumerate(lines, 1) for tok in line.split()]
        self.pos = 0

    def line(self) -> int:
        return self.items[min(self.pos, len(self.items) - 1)][1] if self.items else 1

    def next(self) -> str:
        if self.pos >= len(self.items):
            raise MotionFormatError(self.path, "unexpected end of file in HIERARCHY", self.line())
        tok = self.items[self.pos][0]
        self.pos += 1
        return tok

    def expect(self, word: str) -> None:
        tok = self.next()
        if tok.upper() != word.upper():
            raise MotionFormatError(self.path, f"expected {word!r}, found {tok!r}", self.items[self.pos - 1][1])

    def floats(self, n: int) -> np.ndarray:
        line = self.line()
        try:
            return np.array([float(self.next()) for _ in range(n)])
        except ValueError as err:
            raise MotionFormatError(self.path, f"expected {n} numbers: {err}", line) from None


def read_bvh(path: str | Path, length_scale: float | None = None) -> SourceMotion:
    """Read a BVH file into a SourceMotion (metres, the file's own axes).

    length_scale: metres per file unit; when None it is guessed among metres, inches,
    centimetres and millimetres from the rest skeleton's height. The frame rate is the
    header's (see `sidecar_fps` for releases whose header is wrong). Position channels are
    honoured on the root only, where they give its position (as Blender and most tools read
    them; the root's OFFSET is then ignored on that axis); other joints keep their OFFSET.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="latin-1").splitlines()
    except OSError as err:
        raise MotionFormatError(path, f"cannot read: {err}") from None
    try:
        motion_at = next(i for i, ln in enumerate(lines) if ln.strip().upper() == "MOTION")
    except StopIteration:
        raise MotionFormatError(path, "no MOTION section (truncated or not a BVH file)", len(lines)) from None
    names, parents, offsets, channels = _parse_hierarchy(path, lines[:motion_at])
    values, frame_time = _parse_motion(path, lines, motion_at, sum(len(c) for c in channels))

    offsets = np.asarray(offsets)
    scale = length_scale if length_scale is not None else _guess_scale(offsets, parents)
    num_frames, num_joints = values.shape[0], len(names)
    local_rot = np.broadcast_to(np.eye(3), (num_frames, num_joints, 3, 3)).copy()
    root_pos = np.broadcast_to(offsets[0], (num_frames, 3)).copy()
    col = 0
    for j, chans in enumerate(channels):
        block = values[:, col : col + len(chans)]
        col += len(chans)
        rot = [(c[0], block[:, k]) for k, c in enumerate(chans) if c.endswith("rotation")]
        if rot:
            angles = np.radians(np.stack([a for _, a in rot], axis=-1))
            local_rot[:, j] = euler_to_matrix(angles, "".join(ax for ax, _ in rot))
        if j == 0:
            for k, c in enumerate(chans):
                if c.endswith("position"):
                    root_pos[:, "xyz".index(c[0])] = block[:, k]
    return SourceMotion(
        names=names,
        parents=parents,
        offsets=offsets * scale,
        local_rot=local_rot,
        root_pos=root_pos * scale,
        fps=_fps_from_frame_time(frame_time),
    )


def _parse_hierarchy(path: Path, lines: list[str]) -> tuple[list[str], list[int], list[np.ndarray], list[list[str]]]:
    tokens = _Tokens(path, lines)
    tokens.expect("HIERARCHY")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[np.ndarray] = []
    channels: list[list[str]] = []
    stack: list[int] = []  # open joints
    kind = tokens.next()
    if kind.upper() != "ROOT":
        raise MotionFormatError(path, f"expected ROOT, found {kind!r}", tokens.line())
    while True:
        # `kind` opens a joint: ROOT/JOINT name or End Site.
        line = tokens.line()
        if kind.upper() == "END":
            tokens.expect("Site")
            if not stack:
                raise MotionFormatError(path, "End Site outside a joint", line)
            name = f"{names[stack[-1]]}_end"
            while name in names:
                name += "_"
        else:
            name = tokens.next()
        tokens.expect("{")
        tokens.expect("OFFSET")
        names.append(name)
        parents.append(stack[-1] if stack else -1)
        offsets.append(tokens.floats(3))
        chans: list[str] = []
        if kind.upper() != "END":
            tokens.expect("CHANNELS")
            chan_line = tokens.line()
            try:
                count = int(tokens.next())
            except ValueError:
                raise MotionFormatError(path, "CHANNELS needs a count", chan_line) from None
            chans = [tokens.next().lower() for _ in range(count)]
            bad = [c for c in chans if not re.fullmatch(r"[xyz](position|rotation)", c)]
            if bad:
                raise MotionFormatError(path, f"unknown channel {bad[0]!r}", chan_line)
        channels.append(chans)
        stack.append(len(names) - 1)
        # Close finished joints, then read the next opener (or stop at the end of the root).
        while True:
            tok = tokens.next()
            if tok == "}":
                stack.pop()
                if not stack:
                    if tokens.pos < len(tokens.items):
                        raise MotionFormatError(path, "text after the root joint closed", tokens.line())
                    return names, parents, offsets, channels
                continue
            if tok.upper() in ("JOINT", "END"):
                kind = tok
                break
            raise MotionFormatError(path, f"unexpected {tok!r} in HIERARCHY", tokens.items[tokens.pos - 1][1])


def _parse_motion(path: Path, lines: list[str], motion_at: int, num_channels: int) -> tuple[np.ndarray, float]:
    header: dict[str, str] = {}
    i = motion_at + 1
    for key in ("frames", "frame time"):
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines) or ":" not in lines[i]:
            raise MotionFormatError(path, f"missing '{key.title()}:' line", i + 1)
        name, _, value = lines[i].partition(":")
        if name.strip().lower() != key:
            raise MotionFormatError(path, f"expected '{key.title()}:', found {lines[i].strip()!r}", i + 1)
        header[key] = value.strip()
        i += 1
    try:
        num_frames, frame_time = int(header["frames"]), float(header["frame time"])
    except ValueError:
        raise MotionFormatError(path, "bad Frames / Frame Time value", i) from None
    if num_frames < 1 or not frame_time > 0:
        raise MotionFormatError(path, f"needs Frames >= 1 and Frame Time > 0, got {num_frames}, {frame_time}", i)
    rows = [ln.split() for ln in lines[i : i + num_frames]]
    for k, row in enumerate(rows):
        if len(row) != num_channels:
            raise MotionFormatError(path, f"frame {k + 1}: expected {num_channels} values, found {len(row)}", i + k + 1)
    if len(rows) < num_frames:
        raise MotionFormatError(
            path, f"truncated: header says {num_frames} frames, file has {len(rows)}", len(lines) + 1
        )
    extra = next((n for n in range(i + num_frames, len(lines)) if lines[n].strip()), None)
    if extra is not None:
        raise MotionFormatError(path, f"data after the {num_frames} frames the header declares", extra + 1)
    try:
        values = np.array(rows, dtype=np.float64)
    except ValueError:
        values = None
    bad = (
        np.flatnonzero(~np.isfinite(values).all(axis=1))
        if values is not None
        else [k for k, row in enumerate(rows) if not _all_floats(row)]
    )
    if len(bad):
        raise MotionFormatError(path, f"frame {bad[0] + 1}: non-numeric or non-finite value", i + bad[0] + 1)
    return values, frame_time


def _all_floats(row: list[str]) -> bool:
    try:
        return bool(np.isfinite(np.array(row, dtype=np.float64)).all())
    except ValueError:
        return False


def _guess_scale(offsets: np.ndarray, parents: list[int]) -> float:
    pos = np.zeros_like(offsets)
    for j, p in enumerate(parents):
        pos[j] = offsets[j] + (pos[p] if p >= 0 else 0.0)
    extent = float(np.ptp(pos, axis=0).max())
    if extent <= 0:
        return 1.0
    return min(_UNITS, key=lambda u: abs(np.log(extent * u / _TYPICAL_HEIGHT_M)))


def _fps_from_frame_time(frame_time: float) -> float:
    fps = 1.0 / frame_time
    return float(round(fps)) if abs(fps - round(fps)) < 1e-3 * fps else fps


def sidecar_fps(path: str | Path) -> float | None:
    """Frame rate from a `framerates.txt` beside the file or one folder up, if it names it.

    The CMU "Daz-friendly" BVH release ships such a file ("salsa  framerate 60") because
    some headers claim 120 fps for clips captured at 60. Lines read `<folder or file stem>
    framerate <fps>`; the file's stem wins over its folder's name.
    """
    path = Path(path)
    for folder in (path.parent, path.parent.parent):
        table = folder / "framerates.txt"
        if not table.is_file():
            continue
        rates: dict[str, float] = {}
        for line in table.read_text(encoding="latin-1").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1].lower() == "framerate":
                try:
                    rates[parts[0]] = float(parts[2])
                except ValueError:
                    continue
        for key in (path.stem, path.parent.name):
            if key in rates:
                return rates[key]
    return None
