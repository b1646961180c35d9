"""Blender round trip of the exports: import a BVH and a GLB headless, compare joint positions per frame.

    blender -b --factory-startup --python benchmarks/blender_roundtrip.py -- \
        --bvh motion.bvh --glb motion.glb --reference reference.json --out result.json

Runs inside Blender's own Python (bpy and the standard library only: Debian's
Blender has no numpy). reference.json holds what the project's forward
kinematics gives, y-up world metres: `bvh_joints` [F][22][3] per BVH frame,
`glb_joints` [T][55][3] per glTF key and `names` (55 joint names). Blender imports both with its own add-ons (Y up
turned to its Z up); every joint's head is read in world space at every frame.
The result JSON has, per format, the frame count and the max and per-frame max
joint distance in mm. tests/test_fitting_export.py writes the reference and runs this.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import bpy


def _fix_bvh_reader() -> None:
    """Debian's Blender 3.4 runs on Python 3.11, where its BVH add-on's open(path, "rU") fails:
    give that module an open that drops the "U"."""
    import builtins

    import io_anim_bvh.import_bvh as reader

    reader.open = lambda file, mode="r", *a, **k: builtins.open(file, mode.replace("U", ""), *a, **k)


def _fix_gltf_reader() -> None:
    """Debian's Blender 3.4 glTF add-on uses np.bool, which numpy 1.24 (Debian's) removed: put the alias back."""
    import numpy

    if "bool" not in vars(numpy):
        numpy.bool = bool


def _armature() -> bpy.types.Object:
    return next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")


def _heads(names: list[str], frames: list[float]) -> list[list[tuple[float, float, float]]]:
    """World joint heads per frame and name, back in y-up axes."""
    scene, arm = bpy.context.scene, _armature()
    out = []
    for frame in frames:
        scene.frame_set(int(frame), subframe=frame - int(frame))
        heads = [arm.matrix_world @ arm.pose.bones[name].head for name in names]
        out.append([(x, z, -y) for x, y, z in heads])  # Blender z up -> y up, as both importers turned it
    return out


def _key_frames(obj: bpy.types.Object) -> list[float]:
    """Sorted frames of the keys of the object's animation."""
    action = obj.animation_data.action
    return sorted({round(k.co.x, 4) for fc in action.fcurves for k in fc.keyframe_points})


def _compare(got: list, want: list) -> dict:
    per_frame = [1000.0 * max(math.dist(g, w) for g, w in zip(gf, wf)) for gf, wf in zip(got, want)]
    return {"frames": len(want), "max_mm": max(per_frame), "per_frame_max_mm": [round(e, 4) for e in per_frame]}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="blender_roundtrip.py")
    for name in ("--bvh", "--glb", "--reference", "--out"):
        parser.add_argument(name, required=True)
    args = parser.parse_args(argv)
    with open(args.reference) as fh:
        ref = json.load(fh)
    names = ref["names"]
    result = {"blender": bpy.app.version_string}

    bpy.ops.wm.read_factory_settings(use_empty=True)
    _fix_bvh_reader()
    bpy.ops.import_anim.bvh(
        filepath=args.bvh,
        global_scale=1.0,
        frame_start=1,
        use_fps_scale=False,
        update_scene_fps=True,
        update_scene_duration=True,
        rotate_mode="NATIVE",
        axis_forward="-Z",
        axis_up="Y",
    )
    bvh_frames = [1.0 + f for f in range(len(ref["bvh_joints"]))]
    result["bvh"] = _compare(_heads(names[:22], bvh_frames), ref["bvh_joints"])

    bpy.ops.wm.read_factory_settings(use_empty=True)
    _fix_gltf_reader()
    bpy.ops.import_scene.gltf(filepath=args.glb)
    keys = _key_frames(_armature())
    if len(keys) != len(ref["glb_joints"]):
        raise SystemExit(f"{args.glb}: Blender found {len(keys)} animation keys, expected {len(ref['glb_joints'])}")
    result["glb"] = _compare(_heads(names, keys), ref["glb_joints"])
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else [])
