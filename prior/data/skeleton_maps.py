"""Which source joint drives (or locates) each SMPL-X body joint, per source skeleton.

A map names, for each of the 22 SMPL-X body joints, either the source joint whose rotation
drives it (`rotations`) or, for SMPL-X joints the source lacks, the source joint where it
sits (`anchors`; such a joint gets no rotation of its own). Source joints named in neither
are absorbed: their rotation ends up in the next mapped joint's local rotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from body.skeleton import BODY_JOINT_NAMES


@dataclass(frozen=True)
class SkeletonMap:
    name: str
    rotations: dict[str, str]  # SMPL-X joint -> source joint driving it
    anchors: dict[str, str] = field(default_factory=dict)  # SMPL-X joint -> source joint it sits at
    hinges: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # source joint -> hinge line
    axes: tuple[tuple[float, ...], ...] = ((1, 0, 0), (0, 1, 0), (0, 0, 1))  # source -> SMPL-X axes

    def __post_init__(self) -> None:
        missing = set(BODY_JOINT_NAMES) - set(self.rotations) - set(self.anchors)
        if missing or "pelvis" not in self.rotations:
            raise ValueError(f"skeleton map {self.name}: no source for {sorted(missing) or ['pelvis']}")

    @property
    def axes_matrix(self) -> np.ndarray:
        return np.asarray(self.axes, dtype=np.float64)

    def source_of(self, joint: str) -> str:
        """The source joint where SMPL-X `joint` sits."""
        return self.rotations.get(joint) or self.anchors[joint]

    def required(self) -> set[str]:
        return set(self.rotations.values()) | set(self.anchors.values())


def _sides(table: dict[str, str]) -> dict[str, str]:
    """Expand "{side}_x" -> "{s}name" entries into left_/right_ pairs (s = l or r)."""
    out: dict[str, str] = {}
    for key, value in table.items():
        if "{side}" in key:
            out[key.format(side="left")] = value.format(s="l")
            out[key.format(side="right")] = value.format(s="r")
        else:
            out[key] = value
    return out


# CMU ASF skeleton (also HDM05's): an ASF bone becomes a joint at its start point (see
# asf_amc.py). Absorbed: lhipjoint (fixed), upperneck (into head), lwrist (forearm twist,
# into the wrist), hands' fingers/thumb. Hinge axes come from the ASF's one-dof bones.
CMU_ASF = SkeletonMap(
    name="cmu_asf",
    rotations=_sides(
        {
            "pelvis": "root",
            "{side}_hip": "{s}femur",
            "{side}_knee": "{s}tibia",
            "{side}_ankle": "{s}foot",
            "{side}_foot": "{s}toes",
            "spine1": "lowerback",
            "spine2": "upperback",
            "spine3": "thorax",
            "neck": "lowerneck",
            "head": "head",
            "{side}_collar": "{s}clavicle",
            "{side}_shoulder": "{s}humerus",
            "{side}_elbow": "{s}radius",
            "{side}_wrist": "{s}hand",
        }
    ),
)

# CMU "Daz-friendly" BVH (43 joints, centimetres, y up, facing +z, T-pose rest). It has one spine
# joint fewer than SMPL-X and no toes: spine1 sits at the hip (no rotation of its own), the
# toe joint at the foot's End Site. Absorbed: buttocks (never rotated in the shared clips),
# eyes, fingers. Elbow hinge lines measured as the dominant rotation axis of the forearm
# channels over the shared clips (spread < 0.1 deg); knees bend about x.
CMU_DAZ_BVH = SkeletonMap(
    name="cmu_daz_bvh",
    rotations=_sides(
        {
            "pelvis": "hip",
            "{side}_hip": "{s}Thigh",
            "{side}_knee": "{s}Shin",
            "{side}_ankle": "{s}Foot",
            "spine2": "abdomen",
            "spine3": "chest",
            "neck": "neck",
            "head": "head",
            "{side}_collar": "{s}Collar",
            "{side}_shoulder": "{s}Shldr",
            "{side}_elbow": "{s}ForeArm",
            "{side}_wrist": "{s}Hand",
        }
    ),
    anchors=_sides({"spine1": "hip", "{side}_foot": "{s}Foot_end"}),
    hinges={
        "lShin": (1.0, 0.0, 0.0),
        "rShin": (1.0, 0.0, 0.0),
        "lForeArm": (0.1206, 0.8575, -0.5001),
        "rForeArm": (-0.1207, 0.8575, -0.5001),
    },
)

SKELETON_MAPS: tuple[SkeletonMap, ...] = (CMU_ASF, CMU_DAZ_BVH)


def find_skeleton_map(joint_names: Sequence[str]) -> SkeletonMap | None:
    """The first shipped map whose source joints all exist in `joint_names`, else None."""
    names = set(joint_names)
    return next((smap for smap in SKELETON_MAPS if smap.required() <= names), None)
