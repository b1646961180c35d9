"""Acclaim ASF skeletons and AMC motions (CMU, HDM05), turned into joint-based SourceMotions.

ASF bones are segments: bone b starts where its parent ends, points along `direction`
(world rest axes) for `length`, and rotates by L_b = C_b M_b C_b^-1, where C_b comes from
the bone's `axis` angles and M_b from its AMC dofs (both with the first listed axis applied
first). Each bone becomes a joint at its start point, so joint b's offset is its parent
bone's vector; leaf bones get an extra `<name>_end` joint. Lengths are converted with the
Acclaim/VICON convention used by CMU and HDM05: file length = inches x `:units length`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prior.data.euler import euler_to_matrix
from prior.data.motion import MotionFormatError, SourceMotion

_INCH = 0.0254
_ROT_DOFS = ("rx", "ry", "rz")


@dataclass
class AsfBone:
    name: str
    direction: np.ndarray  # unit vector, world rest axes
    length: float  # metres
    axis: np.ndarray  # C_b (3, 3)
    dofs: list[str] = field(default_factory=list)
    parent: str = "root"


@dataclass
class AsfSkeleton:
    path: str
    bones: dict[str, AsfBone]  # in hierarchy order, parents first
    root_order: list[str]  # AMC root channels, e.g. ["tx", "ty", "tz", "rx", "ry", "rz"]
    root_axis: np.ndarray  # C_root (3, 3)
    length_scale: float  # metres per file length unit
    degrees: bool

    def to_joints(self) -> tuple[list[str], list[int], np.ndarray]:
        """Joint names, parents and rest offsets (metres) of the joint-based form."""
        names, parents, offsets = ["root"], [-1], [np.zeros(3)]
        for bone in self.bones.values():
            parent = names.index(bone.parent)
            names.append(bone.name)
            parents.append(parent)
            offsets.append(self._vector(bone.parent))
        for bone in self.bones.values():
            if not any(b.parent == bone.name for b in self.bones.values()):
                names.append(f"{bone.name}_end")
                parents.append(names.index(bone.name))
                offsets.append(self._vector(bone.name))
        return names, parents, np.stack(offsets)

    def _vector(self, name: str) -> np.ndarray:
        if name == "root":
            return np.zeros(3)
        bone = self.bones[name]
        return bone.direction * bone.length


def _numbers(path: Path, words: list[str], n: int, line: int) -> np.ndarray:
    try:
        values = np.array([float(w) for w in words[:n]])
    except ValueError:
        raise MotionFormatError(path, f"expected {n} numbers, found {' '.join(words)!r}", line) from None
    if values.size != n or not np.isfinite(values).all():
        raise MotionFormatError(path, f"expected {n} finite numbers, found {' '.join(words)!r}", line)
    return values


def _axis_matrix(path: Path, angles: np.ndarray, order: str, degrees: bool, line: int) -> np.ndarray:
    if not re.fullmatch(r"[XYZ]{3}", order.upper()):
        raise MotionFormatError(path, f"bad axis order {order!r}", line)
    rad = np.radians(angles) if degrees else angles
    return euler_to_matrix(rad[::-1], order.lower()[::-1])


@dataclass
class _AsfSections:
    """The ASF file's sections, as words per line (line numbers kept for errors)."""

    units: dict[str, object] = field(default_factory=lambda: {"length": 1.0, "angle": "deg"})
    root_order: list[str] = field(default_factory=lambda: ["tx", "ty", "tz", "rx", "ry", "rz"])
    root_axis_order: str = "XYZ"
    root_orientation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    bones: list[tuple[int, dict[str, list[str]]]] = field(default_factory=list)
    hierarchy: list[tuple[int, list[str]]] = field(default_factory=list)


def _asf_sections(path: Path, lines: list[tuple[int, list[str]]]) -> _AsfSections:
    found = _AsfSections()
    section, block, block_line = "", None, 0
    for n, words in lines:
        key = words[0].lower()
        if key.startswith(":"):
            section = key
            continue
        if section == ":units" and len(words) >= 2:
            found.units[key] = words[1] if key == "angle" else _numbers(path, words[1:], 1, n)[0]
        elif section == ":root":
            if key == "order":
                found.root_order = [w.lower() for w in words[1:]]
            elif key == "axis":
                found.root_axis_order = words[1]
            elif key == "orientation":
                found.root_orientation = _numbers(path, words[1:], 3, n)
        elif section == ":bonedata":
            if key == "begin":
                block, block_line = {}, n
            elif key == "end":
                if block is None:
                    raise MotionFormatError(path, "'end' without 'begin'", n)
                found.bones.append((block_line, block))
                block = None
            elif block is not None:
                block[key] = words[1:]
        elif section == ":hierarchy" and key not in ("begin", "end"):
            found.hierarchy.append((n, words))
    if block is not None:
        raise MotionFormatError(path, "bone block not closed (truncated?)", block_line)
    return found


def _asf_bone(path: Path, n: int, block: dict[str, list[str]], scale: float, degrees: bool) -> AsfBone:
    for key in ("name", "direction", "length", "axis"):
        if key not in block:
            raise MotionFormatError(path, f"bone without {key!r}", n)
    name = block["name"][0]
    direction = _numbers(path, block["direction"], 3, n)
    norm = np.linalg.norm(direction)
    dofs = [d.lower() for d in block.get("dof", [])]
    if any(d not in _ROT_DOFS for d in dofs):
        raise MotionFormatError(path, f"bone {name}: only rotational dofs are supported, got {dofs}", n)
    if len(block["axis"]) < 4:
        raise MotionFormatError(path, f"bone {name}: axis needs three angles and an order", n)
    return AsfBone(
        name=name,
        direction=direction / norm if norm > 0 else direction,
        length=float(_numbers(path, block["length"], 1, n)[0]) * scale,
        axis=_axis_matrix(path, _numbers(path, block["axis"], 3, n), block["axis"][3], degrees, n),
        dofs=dofs,
    )


def _attached(path: Path, bones: dict[str, AsfBone], hierarchy: list[tuple[int, list[str]]]) -> dict[str, AsfBone]:
    """The bones in hierarchy order (parents first), each given its parent."""
    ordered: dict[str, AsfBone] = {}
    for n, (parent, *children) in hierarchy:
        if parent != "root" and parent not in ordered:
            raise MotionFormatError(path, f"hierarchy names {parent!r} before it is attached", n)
        for child in children:
            if child not in bones:
                raise MotionFormatError(path, f"hierarchy names unknown bone {child!r}", n)
            bones[child].parent = parent
            ordered[child] = bones[child]
    return ordered


def read_asf(path: str | Path) -> AsfSkeleton:
    """Parse an ASF skeleton file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as err:
        raise MotionFormatError(path, f"cannot read: {err}") from None
    lines = [(n, ln.split("#", 1)[0].split()) for n, ln in enumerate(text.splitlines(), 1)]
    lines = [(n, w) for n, w in lines if w]
    sections = _asf_sections(path, lines)
    units = sections.units
    if str(units["angle"]).lower() not in ("deg", "rad"):
        raise MotionFormatError(path, f"unknown angle unit {units['angle']!r}")
    degrees = str(units["angle"]).lower() == "deg"
    scale = _INCH / float(units["length"])
    bad_order = [c for c in sections.root_order if c not in ("tx", "ty", "tz", "rx", "ry", "rz")]
    if bad_order:
        raise MotionFormatError(path, f"unknown root channel {bad_order[0]!r}")
    bones = {}
    for n, block in sections.bones:
        bone = _asf_bone(path, n, block, scale, degrees)
        bones[bone.name] = bone
    ordered = _attached(path, bones, sections.hierarchy)
    if not ordered:
        raise MotionFormatError(path, "no :hierarchy (truncated or not an ASF file)", lines[-1][0] if lines else 1)
    return AsfSkeleton(
        path=str(path),
        bones=ordered,
        root_order=sections.root_order,
        root_axis=_axis_matrix(path, sections.root_orientation, sections.root_axis_order, degrees, 0),
        length_scale=scale,
        degrees=degrees,
    )


def read_amc(path: str | Path, skeleton: AsfSkeleton, fps: float = 120.0) -> SourceMotion:
    """Read an AMC motion for `skeleton` into a SourceMotion (metres, the ASF's axes)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="latin-1").splitlines()
    except OSError as err:
        raise MotionFormatError(path, f"cannot read: {err}") from None
    columns: dict[str, tuple[int, int]] = {"root": (0, len(skeleton.root_order))}
    width = len(skeleton.root_order)
    for bone in skeleton.bones.values():
        if bone.dofs:
            columns[bone.name] = (width, len(bone.dofs))
            width += len(bone.dofs)
    degrees = skeleton.degrees
    frames: list[list[float]] = []
    frame_lines: list[int] = []
    frame_numbers: list[int] = []  # the file's own numbering: consecutive, from any start (trimmed CMU clips)
    current: list[float] = []
    seen: set[str] = set()

    def close_frame() -> None:
        if not frame_lines:
            return
        if len(seen) != len(columns):
            missing = ", ".join(sorted(set(columns) - seen)[:4])
            raise MotionFormatError(path, f"frame starting here lacks {missing} (truncated?)", frame_lines[-1])
        frames.append(current)

    for n, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0].startswith(":"):
            if words[0].upper() in (":DEGREES", ":RADIANS"):
                degrees = words[0].upper() == ":DEGREES"
            continue
        if len(words) == 1 and words[0].isdigit():
            close_frame()
            if frame_numbers and int(words[0]) != frame_numbers[-1] + 1:
                raise MotionFormatError(path, f"frame {words[0]} follows frame {frame_numbers[-1]}", n)
            frame_numbers.append(int(words[0]))
            frame_lines.append(n)
            current, seen = [0.0] * width, set()
            continue
        if not frame_lines:
            raise MotionFormatError(path, f"expected a frame number, found {words[0]!r}", n)
        if words[0] not in columns:
            raise MotionFormatError(path, f"unknown bone {words[0]!r}", n)
        start, count = columns[words[0]]
        if len(words) - 1 != count or words[0] in seen:
            raise MotionFormatError(
                path, f"{words[0]}: expected {count} values once per frame, found {len(words) - 1}", n
            )
        try:
            current[start : start + count] = [float(w) for w in words[1:]]
        except ValueError:
            raise MotionFormatError(path, f"{words[0]}: non-numeric value", n) from None
        seen.add(words[0])
    close_frame()
    if not frames:
        raise MotionFormatError(path, "no frames", len(lines) + 1)
    values = np.array(frames)
    bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad.size:
        raise MotionFormatError(path, "non-finite value", frame_lines[bad[0]])
    src = _to_source_motion(skeleton, values, columns, degrees, fps)
    src.first_frame = frame_numbers[0]
    return src


def _to_source_motion(
    skeleton: AsfSkeleton,
    values: np.ndarray,
    columns: dict[str, tuple[int, int]],
    degrees: bool,
    fps: float,
) -> SourceMotion:
    names, parents, offsets = skeleton.to_joints()
    num_frames = values.shape[0]
    local_rot = np.broadcast_to(np.eye(3), (num_frames, len(names), 3, 3)).copy()

    def rotation(block: np.ndarray, dofs: list[str], axis: np.ndarray) -> np.ndarray:
        angles = np.radians(block) if degrees else block
        motion = euler_to_matrix(angles[:, ::-1], "".join(d[1] for d in dofs[::-1]))
        return axis @ motion @ axis.T

    start, _ = columns["root"]
    root = values[:, start : start + len(skeleton.root_order)]
    rot_idx = [k for k, c in enumerate(skeleton.root_order) if c.startswith("r")]
    local_rot[:, 0] = rotation(root[:, rot_idx], [skeleton.root_order[k] for k in rot_idx], skeleton.root_axis)
    root_pos = np.zeros((num_frames, 3))
    for k, c in enumerate(skeleton.root_order):
        if c.startswith("t"):
            root_pos[:, "xyz".index(c[1])] = root[:, k] * skeleton.length_scale
    hinge_axes: dict[str, np.ndarray] = {}
    for bone in skeleton.bones.values():
        if not bone.dofs:
            continue
        start, count = columns[bone.name]
        j = names.index(bone.name)
        local_rot[:, j] = rotation(values[:, start : start + count], bone.dofs, bone.axis)
        if len(bone.dofs) == 1:
            hinge_axes[bone.name] = bone.axis[:, "xyz".index(bone.dofs[0][1])]
    return SourceMotion(
        names=names,
        parents=parents,
        offsets=offsets,
        local_rot=local_rot,
        root_pos=root_pos,
        fps=fps,
        hinge_axes=hinge_axes,
    )
