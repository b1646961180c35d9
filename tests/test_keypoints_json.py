"""OpenPose and COCO JSON: real-world layouts, round trips, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from body.keypoint_sets import BODY25, COCO17
from keypoints import (
    Keypoints,
    KeypointsError,
    read_coco,
    read_openpose,
    read_openpose_folder,
    targets,
    write_coco,
    write_openpose,
)

DATA = Path(__file__).resolve().parent / "data" / "keypoints"


def _random(body_set, k, people, rng, parts=True):
    def pts(n):
        a = rng.uniform(0, 640, (people, n, 3)).astype(np.float32)
        a[..., 2] = rng.uniform(0, 1, (people, n))
        a[:, ::5] = 0  # missing points, as OpenPose writes them
        return a

    extra = dict(left_hand=pts(21), right_hand=pts(21), face=pts(68)) if parts else {}
    return Keypoints(body_set, pts(k), **extra)


def test_openpose_real_layout():
    kp = read_openpose(DATA / "openpose_basketball1.json")
    assert kp.body_set == "body25" and kp.num_people == 2
    assert kp.body.dtype == np.float32 and kp.source.endswith("openpose_basketball1.json")
    raw = json.loads((DATA / "openpose_basketball1.json").read_text())["people"]
    np.testing.assert_allclose(kp.body[0].ravel(), raw[0]["pose_keypoints_2d"], rtol=1e-6)
    # person 1 has no face key and empty hand arrays: zeros, while person 0's are kept
    assert kp.face.shape == (2, 68, 3) and kp.pupils.shape == (2, 2, 3)
    np.testing.assert_allclose(kp.pupils[0].ravel(), raw[0]["face_keypoints_2d"][204:], rtol=1e-6)
    assert not kp.face[1].any() and not kp.left_hand[1].any() and not kp.right_hand[1].any()
    assert kp.left_hand[0, 5:9, 2].max() == 0  # zero-confidence points stay zero
    # small toes missing in the detection (0, 0, 0) keep confidence 0 for the fitter
    assert kp.body[0, BODY25.index("left_small_toe"), 2] == 0
    t = targets(kp, 1)
    assert set(t) == {"body25", "left_hand21", "right_hand21", "face68"}
    assert t["body25"][1][BODY25.index("mid_hip")] == 0


def test_openpose_empty_people_and_coco18():
    empty = read_openpose(DATA / "openpose_empty.json")
    assert empty.num_people == 0 and empty.body.shape == (0, 25, 3) and empty.left_hand is None
    old = read_openpose(DATA / "openpose_coco18.json")
    assert old.body_set == "body25" and old.left_hand is None and old.face is None
    ref = read_openpose(DATA / "openpose_basketball1.json").body[0]
    for name in ("nose", "neck", "left_wrist", "right_ankle", "left_ear"):
        np.testing.assert_allclose(old.body[0, BODY25.index(name)], ref[BODY25.index(name)], atol=1e-3)
    assert old.body[0, BODY25.index("mid_hip"), 2] > 0  # from the two hips
    assert old.body[0, BODY25.index("left_heel"), 2] == 0


def test_openpose_old_key_names(tmp_path):
    body = np.arange(75, dtype=np.float32) % 7
    path = tmp_path / "v1_keypoints.json"
    path.write_text(
        json.dumps({"version": 1.0, "people": [{"pose_keypoints": body.tolist(), "hand_left_keypoints": [1.0] * 63}]})
    )
    kp = read_openpose(path)
    np.testing.assert_array_equal(kp.body[0].ravel(), body)
    assert kp.left_hand.shape == (1, 21, 3) and kp.right_hand is None


@pytest.mark.parametrize("parts", [True, False])
def test_openpose_round_trip(tmp_path, parts):
    kp = _random("body25", 25, 3, np.random.default_rng(0), parts)
    write_openpose(kp, tmp_path / "a_keypoints.json")
    back = read_openpose(tmp_path / "a_keypoints.json")
    assert back.body_set == "body25" and back.num_people == 3
    for name, arr in kp.parts().items():
        np.testing.assert_array_equal(getattr(back, name), arr)
    assert (back.pupils is not None) == parts  # written as zeros when there is a face
    assert [p.name for p in tmp_path.iterdir()] == ["a_keypoints.json"]  # no temp file left


def test_openpose_write_converts_mediapipe(tmp_path):
    kp = _random("mediapipe33", 33, 1, np.random.default_rng(1))
    write_openpose(kp, tmp_path / "m.json")
    back = read_openpose(tmp_path / "m.json")
    np.testing.assert_array_equal(back.body[0, BODY25.index("left_wrist")], kp.body[0, 15])
    np.testing.assert_array_equal(back.left_hand, kp.left_hand)


def test_openpose_video_folder(tmp_path):
    rng = np.random.default_rng(2)
    frames = [_random("body25", 25, 1, rng, False) for _ in range(3)]
    for i in (2, 0, 10):  # OpenPose pads to 12 digits
        write_openpose(frames[min(i, 2)], tmp_path / f"clip_{i:012d}_keypoints.json")
    (tmp_path / "notes.txt").write_text("not a frame")
    read = read_openpose_folder(tmp_path)
    assert [k.frame_index for k in read] == [0, 2, 10]
    np.testing.assert_array_equal(read[2].body, frames[2].body)
    with pytest.raises(KeypointsError, match="no '\\*_keypoints.json'"):
        read_openpose_folder(tmp_path / "..")


def test_coco17_results():
    frames = read_coco(DATA / "coco17_results.json")
    assert [k.num_people for k in frames] == [2, 1] and frames[0].body_set == "coco17"
    raw = json.loads((DATA / "coco17_results.json").read_text())
    np.testing.assert_allclose(frames[1].body[0].ravel(), raw[2]["keypoints"], rtol=1e-6)
    assert frames[0].source.endswith("coco17_results.json#image_id=1")
    # the confident person of image 1 is the first
    np.testing.assert_array_equal(frames[0].choose("confident").body, frames[0].body[:1])


def test_coco_wholebody_dataset_layout():
    frames = read_coco(DATA / "coco_wholebody_gt.json")
    assert len(frames) == 2 and frames[1].num_people == 0  # image without annotations
    kp = frames[0]
    assert kp.body_set == "coco23" and kp.image_size == (640, 480) and kp.source == "basketball1.png"
    assert set(np.unique(kp.body[..., 2])) <= {0.0, 1.0}  # visibility flags -> 0 / 1
    assert kp.left_hand[..., 2].max() == 0 and kp.right_hand[..., 2].max() == 1
    assert set(targets(kp)) == {"coco23", "left_hand21", "right_hand21", "face68"}


def test_mmpose_wholebody_lists():
    (kp,) = read_coco(DATA / "mmpose_wholebody.json")
    assert kp.body_set == "coco23" and kp.num_people == 1 and kp.face.shape == (1, 68, 3)
    assert kp.body[..., 2].max() <= 1  # scores above 1 clipped


@pytest.mark.parametrize("parts", [True, False])
def test_coco_round_trip(tmp_path, parts):
    rng = np.random.default_rng(3)
    frames = [_random("coco23" if parts else "coco17", 23 if parts else 17, n, rng, parts) for n in (2, 1)]
    write_coco(frames, tmp_path / "out.json")
    back = read_coco(tmp_path / "out.json")
    assert len(back) == 2
    for a, b in zip(frames, back):
        assert b.body_set == a.body_set
        for name, arr in a.parts().items():
            np.testing.assert_array_equal(getattr(b, name), arr)


def test_coco_written_from_mediapipe_is_coco17(tmp_path):
    kp = _random("mediapipe33", 33, 1, np.random.default_rng(4), parts=False)
    write_coco(kp, tmp_path / "c.json")
    entry = json.loads((tmp_path / "c.json").read_text())[0]
    assert len(entry["keypoints"]) == 51 and entry["image_id"] == 0
    (back,) = read_coco(tmp_path / "c.json")
    np.testing.assert_array_equal(back.body[0, COCO17.index("right_knee")], kp.body[0, 26])


@pytest.mark.parametrize(
    "content, match",
    [
        ('[{"image_id": 1, "keypoints": [1, 2, 0.5]}]', "people|OpenPose"),  # COCO, not OpenPose
        ('{"version": 1.3}', "not OpenPose JSON"),
        ('{"people": [{"pose_keypoints_2d": [1, 2, 3, 4]}]}', "flat list"),
        ('{"people": [{"pose_keypoints_2d": [1, 2, 0.5]}]}', "1 points, expected 25 or 18"),
        ('{"people": [', "not valid JSON"),
        ("", "not valid JSON"),
    ],
)
def test_openpose_bad_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "bad_keypoints.json"
    path.write_text(content)
    with pytest.raises(KeypointsError, match=match) as err:
        read_openpose(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"version": 1.3, "people": []}', "not COCO keypoint JSON"),
        ('[{"keypoints": [1, 2, 0.5, 3]}]', "flat x, y, score"),
        ('[{"keypoints": [1, 2, 0.5]}]', "has 1 keypoints"),
        ('[{"bbox": [1, 2, 3, 4]}]', "no 'keypoints'"),
        ("\x89PNG\r\n", "not valid JSON"),
    ],
)
def test_coco_bad_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="latin-1")
    with pytest.raises(KeypointsError, match=match) as err:
        read_coco(path)
    assert str(path) in str(err.value)
    assert isinstance(err.value, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(KeypointsError, match="no such file"):
        read_openpose(tmp_path / "nope.json")
