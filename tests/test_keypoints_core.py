"""Keypoints container, joint-set maps and overlays (no detector needed)."""

from __future__ import annotations

import numpy as np
import pytest

from body.keypoint_sets import BODY25, COCO17, COCO23, KEYPOINT_SETS, MEDIAPIPE33
from keypoints import Keypoints, convert, default_weights, draw_keypoints, targets
from keypoints.files import atomic_path, atomic_write_json
from keypoints.maps import WHOLEBODY133


def _points(names, rng, people=2, conf=0.9):
    pts = np.zeros((people, len(names), 3), np.float32)
    pts[..., :2] = rng.uniform(10, 300, (people, len(names), 2))
    pts[..., 2] = conf
    return pts


def test_keypoints_validates_and_casts():
    kp = Keypoints("coco17", np.zeros((2, 17, 3), np.float64).tolist(), image_size=(640.0, 480.0))
    assert kp.body.dtype == np.float32 and kp.num_people == 2 and kp.image_size == (640, 480)
    with pytest.raises(ValueError, match=r"\(P, 17, 3\)"):
        Keypoints("coco17", np.zeros((1, 25, 3)))
    with pytest.raises(ValueError, match="unknown body_set"):
        Keypoints("coco18", np.zeros((1, 18, 3)))
    with pytest.raises(ValueError, match="body holds 2"):
        Keypoints("coco17", np.zeros((2, 17, 3)), left_hand=np.zeros((1, 21, 3)))
    empty = Keypoints.empty("body25", source="x")
    assert empty.num_people == 0 and empty.body.shape == (0, 25, 3)
    assert Keypoints("body25", []).body.shape == (0, 25, 3)


def test_select_boxes_and_choose():
    body = np.zeros((3, 17, 3), np.float32)
    body[0, :, :2] = [[100, 100], [120, 160]] * 8 + [[110, 130]]  # small box
    body[1, :, :2] = [[300, 50], [400, 400]] * 8 + [[350, 200]]  # large box
    body[0, :, 2], body[1, :, 2] = 0.95, 0.6
    kp = Keypoints("coco17", body, left_hand=np.zeros((3, 21, 3)), source="s")
    boxes = kp.person_boxes()
    np.testing.assert_allclose(boxes[0], [100, 100, 120, 160])
    assert np.isnan(boxes[2]).all()  # no confident point
    one = kp.select(1)
    assert one.num_people == 1 and one.left_hand.shape == (1, 21, 3) and one.source == "s"
    np.testing.assert_array_equal(one.body[0], body[1])
    np.testing.assert_array_equal(kp.choose("largest").body, body[1:2])
    np.testing.assert_array_equal(kp.choose("confident").body, body[0:1])
    np.testing.assert_array_equal(kp.choose((95, 95, 125, 165)).body, body[0:1])
    assert kp.select([]).num_people == 0 and Keypoints.empty("coco17").choose().num_people == 0
    with pytest.raises(IndexError):
        kp.select(3)
    with pytest.raises(ValueError, match="largest"):
        kp.choose("tallest")


def test_default_weights_encode_trust():
    w = dict(zip(BODY25, default_weights("body25")))
    assert w["neck"] == w["mid_hip"] == w["left_hip"] == w["right_hip"] == 0 and w["left_knee"] == 1
    w = dict(zip(COCO23, default_weights("coco23")))
    assert w["left_hip"] == 0.5 and w["left_heel"] == 1
    w = dict(zip(MEDIAPIPE33, default_weights("mediapipe33")))
    assert w["right_hip"] == 0.5 and w["left_eye_inner"] == 0.5 and w["nose"] == 1 and w["left_ankle"] == 1
    face = default_weights("face68")
    assert (face[:17] == 0).all() and (face[17:] == 1).all()
    for name in KEYPOINT_SETS:
        assert default_weights(name).shape == (len(KEYPOINT_SETS[name]),)


def test_targets_per_set():
    rng = np.random.default_rng(0)
    mp = Keypoints(
        "mediapipe33",
        _points(MEDIAPIPE33, rng),
        left_hand=_points(range(21), rng),
        right_hand=_points(range(21), rng),
        face=_points(range(68), rng),
    )
    t = targets(mp, person=1)
    assert set(t) == {"mediapipe33", "left_hand21", "right_hand21", "face68"}
    pts, w = t["mediapipe33"]
    assert pts.dtype == np.float32 and pts.shape == (33, 3) and w.shape == (33,)
    np.testing.assert_array_equal(pts, mp.body[1])
    np.testing.assert_array_equal(t["left_hand21"][0], mp.left_hand[1])
    pts[0, 0] = -1  # a copy: the detection is untouched
    assert mp.body[1, 0, 0] != -1
    assert set(targets(Keypoints("body25", _points(BODY25, rng)))) == {"body25"}
    with pytest.raises(IndexError, match="has 2"):
        targets(mp, person=2)


def test_targets_split_wholebody():
    rng = np.random.default_rng(1)
    wb = _points(WHOLEBODY133, rng, people=1)
    t = targets(Keypoints("wholebody133", wb))
    assert set(t) == {"coco23", "left_hand21", "right_hand21", "face68"}
    np.testing.assert_array_equal(t["coco23"][0], wb[0, :23])
    np.testing.assert_array_equal(t["face68"][0], wb[0, 23:91])
    np.testing.assert_array_equal(t["left_hand21"][0], wb[0, 91:112])
    np.testing.assert_array_equal(t["right_hand21"][0], wb[0, 112:])


def test_convert_by_name():
    rng = np.random.default_rng(2)
    mp = Keypoints("mediapipe33", _points(MEDIAPIPE33, rng), source="m", frame_index=4)
    b25 = convert(mp, "body25")
    assert b25.body_set == "body25" and b25.source == "m" and b25.frame_index == 4
    src, dst = dict(zip(MEDIAPIPE33, mp.body[0])), dict(zip(BODY25, b25.body[0]))
    np.testing.assert_array_equal(dst["left_knee"], src["left_knee"])
    np.testing.assert_array_equal(dst["right_big_toe"], src["right_foot_index"])
    np.testing.assert_allclose(dst["neck"][:2], (src["left_shoulder"][:2] + src["right_shoulder"][:2]) / 2)
    assert dst["left_small_toe"][2] == 0  # MediaPipe has no small toe
    c17 = convert(b25, "coco17")
    np.testing.assert_array_equal(c17.body[0], np.array([dst[n] for n in COCO17]))
    # a midpoint needs both ends
    body = convert(Keypoints("coco17", np.ones((1, 17, 3))), "body25").body
    body_missing = np.ones((1, 17, 3), np.float32)
    body_missing[0, COCO17.index("left_hip"), 2] = 0
    assert body[0, BODY25.index("mid_hip"), 2] == 1
    assert convert(Keypoints("coco17", body_missing), "body25").body[0, BODY25.index("mid_hip"), 2] == 0


def test_draw_keypoints_marks_points():
    rng = np.random.default_rng(3)
    kp = Keypoints(
        "body25",
        _points(BODY25, rng, people=1),
        left_hand=_points(range(21), rng, people=1),
        face=_points(range(68), rng, people=1),
    )
    image = np.zeros((320, 320), np.uint8)
    out = draw_keypoints(image, kp)
    assert out.shape == (320, 320, 3) and out.any() and not image.any()
    x, y = kp.body[0, 0, :2].astype(int)
    assert out[y, x].any()
    faint = Keypoints("body25", _points(BODY25, rng, people=1, conf=0.1))
    assert not draw_keypoints(image, faint).any()


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == '{"a":1}' and [p.name for p in tmp_path.iterdir()] == ["out.json"]
