"""Mocap sequences for the temporal lifter (every frame in order, the real root trajectory, split by
actor, cut at glitches) and the ReActIdle skeleton map."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from body.skeleton import BODY_JOINT_NAMES
from prior.data import bone_direction_errors, load_motion
from prior.data.sequences import Sequences, build_sequences, segments
from tests.prior_data_mocap import HELD_OUT_ACTOR, bundled_mocap, hinge_stats

J = BODY_JOINT_NAMES.index


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sequences")
    return out, build_sequences(bundled_mocap(), out, progress=False)


def test_every_frame_in_order_with_the_root_trajectory_split_by_actor(built):
    out, manifest = built
    train, val = Sequences.read(out / "train.npz"), Sequences.read(out / "val.npz")
    assert set(val.actors[val.actor]) == {HELD_OUT_ACTOR} and HELD_OUT_ACTOR not in set(train.actors[train.actor])
    assert manifest["counts"]["val"]["frames"] == val.num_frames and not manifest["skipped"]
    for s in (train, val):
        assert (s.length >= 32).all() and (s.fps <= 30.0 + 1e-3).all()
        assert np.array_equal(s.start, np.concatenate([[0], np.cumsum(s.length)[:-1]]))
    # FAIR's jumping clip: 119.88 fps -> 30 fps, every frame kept (the prior's dataset keeps a tenth).
    clip = list(val.clips).index("fair_bvh/fair1_jumping.bvh")
    source = load_motion(bundled_mocap() / "fair_bvh" / "fair1_jumping.bvh")
    rows = val.clip == clip
    assert int(val.length[rows].sum()) == pytest.approx(source.num_frames * 30 / source.fps, abs=2)
    frames = slice(int(val.start[rows][0]), int(val.start[rows][-1] + val.length[rows][-1]))
    step = np.linalg.norm(np.diff(val.transl[frames], axis=0), axis=-1)
    assert step.max() < 0.2 and np.ptp(val.transl[frames, 1]) > 0.2  # smooth; the pelvis goes up and down


def test_segments_are_cut_at_glitch_frames_and_short_ones_left_out():
    motion = load_motion(bundled_mocap() / "fair_bvh" / "fair1_jumping.bvh")
    pose = motion.body_pose.copy()
    pose[200:204, J("left_ankle") - 1] = [3.0, 0.0, 0.0]  # 172 deg: a capture glitch
    pose[320:324, J("left_ankle") - 1] = [3.0, 0.0, 0.0]
    parts = segments(replace(motion, body_pose=pose), fps=30.0, min_frames=30)  # 119.88 fps: one glitch frame each
    assert [p.num_frames for p in parts] == [50, 83]  # before the first, (29 between: too short), after the second
    assert np.array_equal(parts[1].transl[0], motion.transl[324])


def test_reactidle_map_units_rest_and_hinges():
    """One ReActIdle clip (14 performers standing idle; Blender-style 19-joint rig, metres, y up)."""
    m = load_motion(bundled_mocap() / "reactidle_bvh" / "genuine" / "003_genuine.bvh")
    assert m.skeleton == "reactidle_bvh" and m.fps == pytest.approx(24.0) and m.num_frames > 900
    rest = m.rest_joints
    pairs = ((15, 12), (12, 9), (9, 6), (6, 3), (3, 0), (0, 1), (1, 4), (4, 7))  # head ... left ankle
    assert 1.2 < sum(np.linalg.norm(rest[a] - rest[b]) for a, b in pairs) < 1.9  # metres
    arm = rest[J("left_elbow")] - rest[J("left_shoulder")]
    assert np.allclose(arm / np.linalg.norm(arm), [1, 0, 0], atol=1e-4) and 0.15 < np.linalg.norm(arm) < 0.35  # T-pose
    errors = bone_direction_errors(m)[0]
    assert np.percentile(errors, 95) < 0.1
    up = m.joints[:, J("head"), 1] - m.joints[:, J("pelvis"), 1]
    assert (up > 0.4).all()
    for joint in ("left_elbow", "right_elbow"):  # arms hang bent at the elbow: a forward hinge
        s = hinge_stats(m.body_pose)[joint]
        assert s["n"] > 500 and s["share"] > 0.98 and s["flexion"] > 0.99, (joint, s)
