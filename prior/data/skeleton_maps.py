"""Which source joint drives (or locates) each SMPL-X body joint, per source skeleton.

A map names, for each of the 22 SMPL-X body joints, either the source joint whose rotation
drives it (`rotations`) or, for SMPL-X joints the source lacks, the source joint where it
sits (`anchors`; such a joint gets no rotation of its own). Source joints named in neither
are absorbed: their rotation ends up in the next mapped joint's local rotation.

Source joint names match case-insensitively (SNU's `HEad` is `Head`), and `aliases` lists
other spellings of a joint (`root` for `Hips`). `parents` tells apart skeletons whose joint
names are equal but whose hierarchies differ. How the source's rest pose is aligned with the
SMPL-X T-pose (`rest`), its axes, units, hinge axes and neutral rotations are described on
`SkeletonMap`; the shipped maps are tried in `SKELETON_MAPS` order by `find_skeleton_map`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from body.skeleton import BODY_JOINT_NAMES

Vec = tuple[float, float, float]
CMU_LENGTH_UNIT = 0.0254 / 0.45  # metres per CMU length unit (inches / 0.45, the ASF `:units length`)


@dataclass(frozen=True)
class SkeletonMap:
    """A source skeleton's joint map and the facts the retargeter needs about it.

    rotations / anchors: see the module docstring.
    hinges: source joint -> its hinge line (sign free) in the source's rest axes.
    flexion: source joint -> its signed flexion axis in the source's rest axes: the knee or
        elbow's local rotation points along it when the limb bends the natural way. Measured
        on the shipped clips with `flexion_axis` (see the tests).
    axes: rows of the rotation from source to SMPL-X axes (y up, subject's left +x, facing
        +z); None detects them (see `prior.data.retarget.detect_axes`).
    rest: "tpose" when the source's zero pose is a standing T-pose (or arms-down pose) whose
        joints are neutral there; "frames" when it is not (SNU's 22-joint skeleton, whose
        rest offsets all point along +x): each joint's rest frame is then rebuilt from
        world-space joint frames of the zero pose (bone directions, the hips' and hinges'
        axes), with no T-pose assumption (`prior.data.retarget.rest_frames`).
    neutral: source joint -> rotation vector (degrees, in its parent's rest axes) of its
        local rotation when anatomically neutral, for rigs whose zero pose is not (SNU's
        hands are twisted about the forearm there).
    measure_flexion: measure each motion's own flexion axes (`flexion_axis` over its frames,
        when at least 30 frames bend by 20 deg; the map's `flexion` otherwise), for rigs
        whose knees and elbows are 3-dof and whose bending axis varies between captures.
    hinge_twist: "keep" leaves twist about a knee or elbow bone where the source puts it;
        "child" moves it to the ankle or wrist (sources whose knees and elbows carry the
        forearm or shin twist), so knees and elbows stay hinges as in SMPL-X.
    units: metres per source length unit; None detects them from the skeleton's size;
        "typical" scales each file to a typical adult (files in arbitrary, varying units).
    """

    name: str
    rotations: dict[str, str]
    anchors: dict[str, str] = field(default_factory=dict)
    hinges: dict[str, Vec] = field(default_factory=dict)
    flexion: dict[str, Vec] = field(default_factory=dict)
    axes: tuple[tuple[float, ...], ...] | None = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    rest: str = "tpose"
    neutral: dict[str, Vec] = field(default_factory=dict)
    measure_flexion: bool = False
    hinge_twist: str = "keep"
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)
    units: float | str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        missing = set(BODY_JOINT_NAMES) - set(self.rotations) - set(self.anchors)
        if missing or "pelvis" not in self.rotations:
            raise ValueError(f"skeleton map {self.name}: no source for {sorted(missing) or ['pelvis']}")
        if self.rest not in ("tpose", "frames"):
            raise ValueError(f"skeleton map {self.name}: rest must be 'tpose' or 'frames', got {self.rest!r}")
        if self.hinge_twist not in ("keep", "child"):
            raise ValueError(f"skeleton map {self.name}: hinge_twist must be 'keep' or 'child'")

    @property
    def axes_matrix(self) -> np.ndarray:
        if self.axes is None:
            raise ValueError(f"skeleton map {self.name}: axes are detected per motion")
        return np.asarray(self.axes, dtype=np.float64)

    def source_of(self, joint: str) -> str:
        """The source joint where SMPL-X `joint` sits."""
        return self.rotations.get(joint) or self.anchors[joint]

    def required(self) -> set[str]:
        return set(self.rotations.values()) | set(self.anchors.values())

    def resolve(self, names: Sequence[str], parents: Sequence[int] | None = None) -> dict[str, str] | None:
        """{file's joint name: map's name} when the skeleton `names` (with `parents`) fits this
        map, else None. Names match case-insensitively, and through `aliases`."""
        by_lower: dict[str, str] = {}
        for n in names:
            by_lower.setdefault(n.lower(), n)
        found: dict[str, str] = {}
        for wanted in sorted(self.required() | set(self.parents) | set(self.parents.values())):
            spelling = next(
                (by_lower[s.lower()] for s in (wanted, *self.aliases.get(wanted, ())) if s.lower() in by_lower), None
            )
            if spelling is None:
                return None
            found[wanted] = spelling
        if self.parents:
            if parents is None:
                return None
            index = {n: i for i, n in enumerate(names)}
            for child, parent in self.parents.items():
                p = parents[index[found[child]]]
                if p < 0 or names[p] != found[parent]:
                    return None
        renames = {actual: wanted for wanted, actual in found.items() if actual != wanted}
        clashes = set(renames.values()) & (set(names) - set(renames))
        return None if clashes else renames


def _sides(table: dict[str, str]) -> dict[str, str]:
    """Expand "{side}_x" -> "{s}name" / "{S}name" / "{Side}name" entries into left_/right_ pairs
    (s = l or r, S = L or R, Side = Left or Right)."""
    out: dict[str, str] = {}
    for key, value in table.items():
        if "{side}" in key:
            out[key.format(side="left")] = value.format(s="l", S="L", Side="Left")
            out[key.format(side="right")] = value.format(s="r", S="R", Side="Right")
        else:
            out[key] = value
    return out


def _side_vectors(table: dict[str, Vec]) -> dict[str, Vec]:
    """{"{Side}Leg": v} -> LeftLeg: v, RightLeg: v mirrored through x = 0 with the sign of a
    flexion axis kept (an axial vector: (x, y, z) -> (x, -y, -z))."""
    out: dict[str, Vec] = {}
    for key, (x, y, z) in table.items():
        out[key.format(s="l", S="L", Side="Left")] = (x, y, z)
        out[key.format(s="r", S="R", Side="Right")] = (x, -y, -z)
    return out


# CMU ASF skeleton (also HDM05's): an ASF bone becomes a joint at its start point (see
# asf_amc.py). Absorbed: lhipjoint (fixed), upperneck (into head), lwrist (forearm twist,
# into the wrist), hands' fingers/thumb. Hinge axes come from the ASF's one-dof bones.
_CMU_ASF_ROTATIONS = _sides(
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
)
CMU_ASF = SkeletonMap(name="cmu_asf", rotations=_CMU_ASF_ROTATIONS, description="CMU / HDM05 ASF skeleton")

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
    description="CMU 'Daz-friendly' BVH (cgspeed), 43 joints",
)

# The CMU conversions below (ASF bone names, MotionBuilder-style, 3ds Max-style) keep the ASF
# rest pose and its one-dof knees and elbows: ASF `axis` 20 deg about z on the tibiae, the
# radii's hinge 30 deg off y. Flexion axes measured on the shared clips (spread < 2 deg).
_CMU_KNEE_FLEXION = (0.9397, 0.3420, 0.0)  # left; the right mirrored
_CMU_ELBOW_FLEXION = (0.0, -0.8660, 0.5)

# CMU clips converted to BVH with the ASF's bone names (cmu_daz_more_bvh 16_01/02): the same
# joints as the ASF (a joint at each bone's start; `hip` is the root), CMU length units.
CMU_ASF_BVH = SkeletonMap(
    name="cmu_asf_bvh",
    rotations=_CMU_ASF_ROTATIONS,
    aliases={"root": ("hip",)},
    flexion=_side_vectors({"{s}tibia": _CMU_KNEE_FLEXION, "{s}radius": _CMU_ELBOW_FLEXION}),
    axes=None,
    description="CMU BVH with ASF bone names (hip, lhipjoint, lfemur, ...)",
)

# CMU MotionBuilder-style BVH (cgspeed / motion-viewer; 31 joints): the ASF joints renamed.
# LowerBack and Neck have zero offsets (ASF lowerback / lowerneck at their bone's start); Neck1
# (upperneck) is absorbed into the head, LeftHand (ASF lwrist, forearm twist) into the wrist
# (LeftFingerBase = ASF lhand), LHipJoint is fixed. CMU length units, y up, facing +z.
CMU_MB_BVH = SkeletonMap(
    name="cmu_mb_bvh",
    rotations=_sides(
        {
            "pelvis": "Hips",
            "{side}_hip": "{Side}UpLeg",
            "{side}_knee": "{Side}Leg",
            "{side}_ankle": "{Side}Foot",
            "{side}_foot": "{Side}ToeBase",
            "spine1": "LowerBack",
            "spine2": "Spine",
            "spine3": "Spine1",
            "neck": "Neck",
            "head": "Head",
            "{side}_collar": "{Side}Shoulder",
            "{side}_shoulder": "{Side}Arm",
            "{side}_elbow": "{Side}ForeArm",
            "{side}_wrist": "{Side}FingerBase",
        }
    ),
    flexion=_side_vectors({"{Side}Leg": _CMU_KNEE_FLEXION, "{Side}ForeArm": _CMU_ELBOW_FLEXION}),
    axes=None,
    description="CMU MotionBuilder-style BVH, 31 joints (Hips, LHipJoint, LeftUpLeg, ..., LowerBack, Neck1)",
)

# CMU 3ds Max-style BVH (cgspeed "Max-friendly"; bvh11, AnimatedDrawings' cmu1): the ASF joints
# renamed; arms hang down at rest (the ASF's elbows along -y), mixed channel orders (arms ZXY).
# lowerback / lowerneck / LeftCollar / lhand have zero offsets; Neck (upperneck) is absorbed
# into the head, LeftWrist (lwrist) into the wrist (lhand).
CMU_MAX_BVH = SkeletonMap(
    name="cmu_max_bvh",
    rotations=_sides(
        {
            "pelvis": "Hips",
            "{side}_hip": "{Side}Hip",
            "{side}_knee": "{Side}Knee",
            "{side}_ankle": "{Side}Ankle",
            "{side}_foot": "{Side}Toe",
            "spine1": "lowerback",
            "spine2": "Chest",
            "spine3": "Chest2",
            "neck": "lowerneck",
            "head": "Head",
            "{side}_collar": "{Side}Collar",
            "{side}_shoulder": "{Side}Shoulder",
            "{side}_elbow": "{Side}Elbow",
            "{side}_wrist": "{s}hand",
        }
    ),
    flexion=_side_vectors({"{Side}Knee": _CMU_KNEE_FLEXION, "{Side}Elbow": (-0.8660, 0.0, 0.5)}),
    axes=None,
    description="CMU 3ds Max-style BVH, 31 joints (LeftHip, LeftKnee, ..., lowerback, Chest, Chest2)",
)

# FAIR AnimatedDrawings actor (27 joints): z up, facing -y, XYZ channels, a T-pose rest with
# one-dof knees (x) and elbows (z). Four spine joints: Spine2 is absorbed into Spine3 (the
# chest carrying the neck and arms). Its length unit is none of the usual ones and differs
# between files (head-to-ankle chain 36 to 42 units): each file is scaled to a typical adult.
FAIR_BVH = SkeletonMap(
    name="fair_bvh",
    rotations=_sides(
        {
            "pelvis": "Hips",
            "{side}_hip": "{Side}UpLeg",
            "{side}_knee": "{Side}Leg",
            "{side}_ankle": "{Side}Foot",
            "{side}_foot": "{Side}ToeBase",
            "spine1": "Spine",
            "spine2": "Spine1",
            "spine3": "Spine3",
            "neck": "Neck",
            "head": "Head",
            "{side}_collar": "{Side}Shoulder",
            "{side}_shoulder": "{Side}Arm",
            "{side}_elbow": "{Side}ForeArm",
            "{side}_wrist": "{Side}Hand",
        }
    ),
    flexion=_side_vectors({"{Side}Leg": (1.0, 0.0, 0.0), "{Side}ForeArm": (0.0, 0.0, -1.0)}),
    axes=None,
    units="typical",
    description="FAIR AnimatedDrawings BVH, 27 joints, z up",
)

# SNU "woody" skeleton (ys2010, tennis): 20 joints, centimetres, y up, facing +z, T-pose rest;
# typos `HEad` (or `Head`) and `LeftShoulder1` (the left collar); no neck, no fingers; the hips'
# branches come in two orders. The 26-joint variant (woody2 Samsung, VideoMotion, Walking,
# boxing; `root` for Hips in one file) adds zero-offset `*Dummy` joints (absorbed), in inches.
# Spine sits ~12 cm above the hips, Spine1 at the collars, HEad at the neck's base: spine1 is
# anchored at the hips; HEad drives the SMPL-X neck, whose head joint sits at the skull's End
# Site. The collars hold one angle per clip (std ~1 deg; 20-45 deg of depression, a solver
# artefact): they are anchors, so their own twist is dropped and only the swing that keeps the
# shoulder joint where the source has it remains (20-45 deg; CMU's collars are never rotated).
# Knees and elbows are 3-dof in the capture: the solver puts the shin and forearm twist there
# (forearm: 55 deg median), which moves to the ankle and wrist, and the elbows' bending axis
# differs between captures (20- and 26-joint rigs): each motion's own flexion axes are used
# (the constants: swing axes over the 20-joint clips, spread 1-3 deg, as a fallback).
SNU_WOODY = SkeletonMap(
    name="snu_woody",
    rotations=_sides(
        {
            "pelvis": "Hips",
            "{side}_hip": "{Side}UpLeg",
            "{side}_knee": "{Side}Leg",
            "{side}_ankle": "{Side}Foot",
            "{side}_foot": "{Side}Toes",
            "spine2": "Spine",
            "spine3": "Spine1",
            "neck": "Head",
            "{side}_shoulder": "{Side}Arm",
            "{side}_elbow": "{Side}ForeArm",
            "{side}_wrist": "{Side}Hand",
        }
    ),
    anchors={"spine1": "Hips", "head": "Head_end", "left_collar": "LeftShoulder1", "right_collar": "RightShoulder"},
    aliases={"Hips": ("root",)},
    flexion=_side_vectors({"{Side}Leg": (1.0, 0.0, 0.0), "{Side}ForeArm": (0.0, -0.8988, -0.4384)}),
    measure_flexion=True,
    hinge_twist="child",
    axes=None,
    description="SNU woody BVH, 20 joints (HEad, LeftShoulder1) or 26 with *Dummy joints",
)

# SNU 22-joint skeleton (SNU Motion Database basketball, CMU 69 retargeted by SNU, martial arts):
# centimetres, world y up; every rest offset points along its parent's +x (legs too), so the
# zero pose is a straight line, not a T-pose: rest frames come from world-space joint frames
# (rest="frames"). Knees and elbows flex about the joint's -z (basketball: one-dof, exactly;
# SNU's CMU 69 and the martial arts rig: 3-dof, up to 30 deg off, so each motion's own flexion
# axes are used). The hands' zero pose is twisted about the forearm: SNU's own retargeting of
# CMU subject 69 holds them at -85 (left) / +85 (right) deg about x throughout (spread < 5
# deg), taken as the neutral hand (martial arts rig: -85 deg on both sides, its mean). The toes
# are never rotated (a constant 90 deg): the SMPL-X foot joints sit there with no rotation.
# Two hierarchies with the same names: the collars under Neck (basketball, CMU 69) or under
# Spine2 with the arms listed first (martial arts, whose rig differs: left leg and right arm
# along -x, a dummy toe End Site): separate maps.
_SNU22_ROTATIONS = _sides(
    {
        "pelvis": "Hips",
        "{side}_hip": "{Side}UpLeg",
        "{side}_knee": "{Side}Leg",
        "{side}_ankle": "{Side}Foot",
        "spine1": "Spine",
        "spine2": "Spine1",
        "spine3": "Spine2",
        "neck": "Neck",
        "head": "Head",
        "{side}_collar": "{Side}Shoulder",
        "{side}_shoulder": "{Side}Arm",
        "{side}_elbow": "{Side}ForeArm",
        "{side}_wrist": "{Side}Hand",
    }
)
_SNU22_FLEXION = {
    "LeftLeg": (0, 0, -1.0),
    "RightLeg": (0, 0, -1.0),
    "LeftForeArm": (0, 0, -1.0),
    "RightForeArm": (0, 0, -1.0),
}
SNU_22 = SkeletonMap(
    name="snu_22",
    rotations=_SNU22_ROTATIONS,
    anchors=_sides({"{side}_foot": "{Side}Toe"}),
    flexion=_SNU22_FLEXION,
    measure_flexion=True,
    rest="frames",
    neutral={"LeftHand": (-85.0, 0.0, 0.0), "RightHand": (85.0, 0.0, 0.0)},
    hinge_twist="child",
    axes=None,
    parents={"LeftShoulder": "Neck", "RightShoulder": "Neck"},
    description="SNU 22-joint BVH (rest offsets along +x), collars under Neck",
)
SNU_22_ARMS_FIRST = SkeletonMap(
    name="snu_22_arms_first",
    rotations=_SNU22_ROTATIONS,
    anchors=_sides({"{side}_foot": "{Side}Toe"}),
    flexion=_SNU22_FLEXION,
    measure_flexion=True,
    rest="frames",
    neutral={"LeftHand": (-85.0, 0.0, 0.0), "RightHand": (-85.0, 0.0, 0.0)},
    hinge_twist="child",
    axes=None,
    parents={"LeftShoulder": "Spine2", "RightShoulder": "Spine2"},
    description="SNU 22-joint BVH (rest offsets along +x), arms listed before neck and head",
)

# ReActIdle (Blender rigify-style "metarig" export, 19 joints): y up, metres, facing +z, a T-pose
# rest; 6 channels on most joints (the non-root positions repeat the offsets: ignored). `spine`
# sits on the pelvis (zero offset) and drives spine1; spine.001 carries the neck and the
# shoulders (SMPL-X spine3); spine2 has no twin (anchored at spine.001, no rotation of its own).
# `face` sits at the skull's base (head). No hands or toes: the wrists and feet are the End Sites
# of the forearms and feet (anchors). pelvis.L/R are zero-offset stubs (absorbed, never rotated).
# Knees and elbows are 3-dof and carry twist (moved to the ankles and wrists); the elbows' bending
# axis, measured on 003_acted, is 30 deg off the rig's y: each motion's own axes are used (the
# idle knees never bend 20 deg, so theirs is the constant: x).
REACTIDLE_BVH = SkeletonMap(
    name="reactidle_bvh",
    rotations=_sides(
        {
            "pelvis": "pelvis",
            "{side}_hip": "thigh.{S}",
            "{side}_knee": "shin.{S}",
            "{side}_ankle": "foot.{S}",
            "spine1": "spine",
            "spine3": "spine.001",
            "neck": "neck",
            "head": "face",
            "{side}_collar": "shoulder.{S}",
            "{side}_shoulder": "upper_arm.{S}",
            "{side}_elbow": "forearm.{S}",
        }
    ),
    anchors=_sides({"spine2": "spine.001", "{side}_foot": "foot.{S}_end", "{side}_wrist": "forearm.{S}_end"}),
    flexion=_side_vectors({"shin.{S}": (1.0, 0.0, 0.0), "forearm.{S}": (0.011, -0.505, -0.863)}),
    measure_flexion=True,
    hinge_twist="child",
    units=1.0,
    description="ReActIdle BVH (Blender metarig), 19 joints: thigh.L, shin.L, spine.001, face; no hands, no toes",
)

# Most specific first: maps whose joints are a subset of another's come later.
SKELETON_MAPS: tuple[SkeletonMap, ...] = (
    CMU_ASF,
    CMU_DAZ_BVH,
    CMU_ASF_BVH,
    CMU_MB_BVH,
    CMU_MAX_BVH,
    FAIR_BVH,
    SNU_WOODY,
    SNU_22,
    SNU_22_ARMS_FIRST,
    REACTIDLE_BVH,
)


def find_skeleton_map(
    joint_names: Sequence[str], parents: Sequence[int] | None = None
) -> tuple[SkeletonMap, dict[str, str]] | None:
    """The first shipped map that fits the skeleton, with the renames it needs (see
    `SkeletonMap.resolve`), else None."""
    for smap in SKELETON_MAPS:
        renames = smap.resolve(joint_names, parents)
        if renames is not None:
            return smap, renames
    return None
