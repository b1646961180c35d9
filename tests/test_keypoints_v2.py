"""Detector v2 (issue 12): BlazePose Heavy and Full offline, crops that map back
exactly, MoveNet person boxes, and the sanity gates (a two-person chimera is
rejected, real single people pass)."""

from __future__ import annotations

import logging
import socket

import numpy as np
import pytest

from keypoints import MediaPipeDetector, models
from keypoints.gates import skeleton_problem
from keypoints.person_finder import crop_around, make_finder
from tests.conftest import PHOTOS

IMAGES = PHOTOS
heavy_installed = pytest.mark.skipif(not models.heavy_available(), reason="BlazePose Heavy not installed")
movenet_installed = pytest.mark.skipif(not models.movenet_available(), reason="MoveNet not installed")
LEFT_MAN_BOX = (25, 70, 180, 480)  # the man on the left of basketball1.png


def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("landmarks", ["full", pytest.param("heavy", marks=heavy_installed)])
def test_landmark_models_load_and_detect_offline(monkeypatch, landmarks):
    _block_network(monkeypatch)
    with MediaPipeDetector(holistic=True, landmarks=landmarks) as d:
        assert d.landmarks == landmarks
        kp = d(IMAGES / "basketball1.png")
    man = kp.choose(LEFT_MAN_BOX)
    x0, y0, x1, y1 = LEFT_MAN_BOX
    nose = man.body[0, 0]
    assert x0 <= nose[0] <= x1 and y0 <= nose[1] <= y1 and nose[2] > 0.5
    assert man.face[0, :, 2].max() > 0  # Holistic's face found with either model


def test_heavy_missing_falls_back_to_full_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(models, "heavy_available", lambda: False)
    monkeypatch.setattr(models, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="keypoints.models"):
        assert models.resolve_landmarks("heavy") == "full"
        assert models.resolve_landmarks("heavy") == "full"
        assert models.resolve_landmarks("full") == "full"
    assert len(caplog.records) == 1 and "using Full" in caplog.records[0].getMessage()
    with pytest.raises(ValueError):
        models.resolve_landmarks("lite")


def test_crop_maps_back_exactly():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (300, 400, 3), np.uint8)
    for box, size in (((50, 40, 110, 200), 512), ((-30, 250, 60, 330), 256), ((390, 0, 420, 20), 64)):
        crop = crop_around(image, np.array(box, np.float32), size)
        assert crop.image.shape == (size, size, 3)
        # the crop's pixel (u, v) spans full-image [x0 + u / s, x0 + (u + 1) / s): its centre maps to the centre
        u = np.array([[0.5, 0.5], [size - 0.5, size - 0.5], [size / 3, size / 2]], np.float32)
        expected = u / crop.scale + np.array([crop.x0, crop.y0])
        np.testing.assert_allclose(crop.to_image(u), expected, atol=1e-4)
        # a marked pixel inside the image lands back on itself
        marked = image.copy()
        cx, cy = int(np.clip(box[0] + 5, 0, 399)), int(np.clip(box[1] + 5, 0, 299))
        marked[cy, cx] = (255, 0, 255)
        marked_crop = crop_around(marked, np.array(box, np.float32), size, margin=0.25)
        side = 1 / crop.scale
        if side <= 1:  # upscaled: the crop pixel nearest the mark's centre maps back within half a pixel
            uv = (np.array([cx + 0.5, cy + 0.5]) - [crop.x0, crop.y0]) * crop.scale
            back = crop.to_image(uv[None].astype(np.float32))[0]
            np.testing.assert_allclose(back, [cx + 0.5, cy + 0.5], atol=1e-3)
            assert marked_crop.image.shape == crop.image.shape


def test_crop_detection_lands_on_the_whole_image_detection():
    """Landmarks found in a padded, upscaled crop are the whole image's within a few px."""
    with MediaPipeDetector(holistic=False, find_people=False, landmarks="full") as d:
        whole = d(IMAGES / "basketball1.png").choose(LEFT_MAN_BOX).body[0]
        from keypoints.files import read_image

        image = read_image(IMAGES / "basketball1.png")
        crop = crop_around(image, np.array(LEFT_MAN_BOX, np.float32), 512)
        in_crop = d(crop.image).body[0]
    mapped = crop.to_image(in_crop[:, :2])
    core = [0, 11, 12, 23, 24, 25, 26]
    assert np.linalg.norm(mapped[core] - whole[core, :2], axis=1).max() < 12


@movenet_installed
def test_movenet_boxes_both_people_offline(monkeypatch):
    _block_network(monkeypatch)
    from keypoints.files import read_image

    finder = make_finder("movenet")
    boxes, points = finder(read_image(IMAGES / "basketball1.png"))
    assert len(boxes) >= 2 and points.shape == (len(boxes), 17, 3) and finder.name == "movenet"
    left = boxes[np.argmin(boxes[:, 0])]
    assert left[0] < 60 and left[2] < 200 and left[3] > 400  # the man on the left, head to toe
    assert boxes[:, 0].max() > 400  # the man on the right (no face visible to MediaPipe's detector)


# --- sanity gates ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_people():
    """Single-person detections of real photos (Full and Heavy)."""
    out = {}
    for landmarks in ("full", "heavy") if models.heavy_available() else ("full",):
        with MediaPipeDetector(holistic=False, landmarks=landmarks, gates=False) as d:
            for name, file in (("basketball1", "basketball1.png"), ("basketball2", "basketball2.png"),
                               ("astronaut", "astronaut.jpg")):  # fmt: skip
                kp = d(IMAGES / file)
                for i in range(kp.num_people):
                    out[landmarks, name, i] = (kp.body[i], kp.image_size)
    return out


def test_gate_accepts_real_single_people(real_people):
    assert len(real_people) >= 6
    for key, (body, size) in real_people.items():
        assert skeleton_problem(body, image_size=size) is None, key


def _chimera(top: np.ndarray, legs: np.ndarray) -> np.ndarray:
    """Head, arms and shoulders of `top`, hips and legs of `legs` (mediapipe33)."""
    body = top.copy()
    lower = list(range(23, 33))
    body[lower] = legs[lower]
    return body


def test_gate_rejects_two_person_chimera(real_people):
    body, size = real_people["full", "basketball1", 0]
    # a second person: the same man shifted 230 px right and 40 px down (adjacent, as seated neighbours)
    other = body.copy()
    other[:, :2] += (230, 40)
    chimera = _chimera(body, other)
    why = skeleton_problem(chimera, image_size=(900, 600))
    assert why is not None and why.split(":")[0] in ("limb_ratio", "side_ratio", "torso_crossed", "torso_stretched")
    # with the two people's boxes (as from MoveNet) the split itself is named
    boxes = np.array([[25, 70, 180, 480], [255, 110, 410, 520]], np.float32)
    why = skeleton_problem(chimera, boxes=boxes)
    assert why is not None and why.startswith("two_people"), why
    # each real person passes with the same boxes
    assert skeleton_problem(body, boxes=boxes) is None
    assert skeleton_problem(other, boxes=boxes) is None


def test_gate_rejects_synthetic_shapes():
    body = np.zeros((33, 3), np.float32)
    pts = {  # a standing person facing the camera, 100 px torso
        0: (100, 40), 11: (125, 80), 12: (75, 80), 13: (135, 140), 14: (65, 140), 15: (140, 190), 16: (60, 190),
        23: (120, 180), 24: (80, 180), 25: (118, 270), 26: (82, 270), 27: (118, 355), 28: (82, 355),
    }  # fmt: skip
    for i, xy in pts.items():
        body[i] = (*xy, 0.9)
    assert skeleton_problem(body) is None
    crossed = body.copy()
    crossed[[11, 12], 0] = crossed[[12, 11], 0]  # shoulders swapped left/right, hips not
    assert skeleton_problem(crossed).startswith("torso_crossed")
    inverted = body.copy()
    inverted[[11, 12, 23, 24], 1] = inverted[[23, 24, 11, 12], 1]  # shoulders below hips
    assert skeleton_problem(inverted) is not None
    long_shin = body.copy()
    long_shin[27] = (118, 700, 0.9)  # left shin ~430 px vs thigh 90
    assert skeleton_problem(long_shin).startswith("limb_ratio")
    # a forearm pointing at the camera (foreshortened to a fifth) is not a reason
    short_forearm = body.copy()
    short_forearm[15] = (137, 150, 0.9)
    assert skeleton_problem(short_forearm) is None
    # unconfident points are not judged
    unsure = long_shin.copy()
    unsure[27, 2] = 0.3
    assert skeleton_problem(unsure) is None


def test_detector_records_rejections(monkeypatch):
    """A skeleton that fails a gate is dropped and the reason kept in Keypoints.rejected."""
    import keypoints.mediapipe_detector as mpd

    monkeypatch.setattr(mpd, "skeleton_problem", lambda body, boxes, size, min_score: "limb_ratio: test")
    with MediaPipeDetector(holistic=False, landmarks="full", finder="hog") as d:
        kp = d(IMAGES / "basketball1.png")
    assert kp.num_people == 0 and kp.rejected and all(r.endswith("limb_ratio: test") for r in kp.rejected)
    assert kp.rejected[0].startswith("whole image")


def _standing(dx: float = 0.0, score: float = 0.9) -> np.ndarray:
    """A (33, 3) mediapipe33 person facing the camera (100 px torso), moved `dx` px right."""
    body = np.zeros((33, 3), np.float32)
    pts = {  # nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles
        0: (100, 40), 2: (108, 32), 5: (92, 32), 7: (115, 36), 8: (85, 36), 11: (125, 80), 12: (75, 80),
        13: (135, 140), 14: (65, 140), 15: (140, 190), 16: (60, 190), 23: (120, 180), 24: (80, 180),
        25: (118, 270), 26: (82, 270), 27: (118, 355), 28: (82, 355),
    }  # fmt: skip
    for i, (x, y) in pts.items():
        body[i] = (x + dx, y, score)
    return body


def test_same_person_finds_a_skeleton_found_twice():
    from keypoints.gates import MIRROR, same_person

    body = _standing()
    assert same_person(body, body + (3, -2, 0)).startswith("same_person")  # the same man, a few px apart
    assert same_person(body, body[list(MIRROR)]) is not None  # ... with left and right swapped
    assert same_person(body, _standing(dx=70)) is None  # a neighbour shoulder to shoulder
    assert same_person(body, _standing(dx=70, score=0.3)) is None
    nested = body.copy()  # head on the man's head, a body shrunk into his chest
    nested[11:, :2] = (nested[11:, :2] - (100, 40)) * 0.4 + (100, 40)
    assert "head points" in same_person(nested, body)
    child = nested.copy()
    child[:, 1] += 40  # inside his box, but a head at his chest: a child in front of him
    assert same_person(child, body) is None


class _FakeFinder:
    """Person boxes as from keypoints.person_finder, with MoveNet's COCO-17 points per box."""

    name = "fake"

    def __init__(self, boxes: np.ndarray, points: np.ndarray) -> None:
        self.boxes, self.points = boxes, points

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.boxes, self.points


def test_movenet_points_kept_where_blazepose_finds_nobody(monkeypatch):
    """A MoveNet box without a BlazePose skeleton keeps MoveNet's points, through the gates,
    marked "movenet", and is fitted as coco17 (no hands, no face)."""
    from fitting.config import load_config
    from fitting.targets import people_targets
    from keypoints import targets
    from keypoints.maps import convert_points, set_names

    to_coco = lambda body: convert_points(body, set_names("mediapipe33"), set_names("coco17"))  # noqa: E731
    man = to_coco(_standing(dx=200, score=0.6) + (0, 60, 0))
    man[[1, 2]] = (300, 90, 0.1)  # eyes guessed: kept as missing
    broken = to_coco(_standing(dx=400, score=0.6) + (0, 60, 0))
    broken[13] = (519, 250, 0.6)  # left knee at the hip: shin 16x the thigh
    boxes = np.array([[260, 80, 360, 430, 0.7], [460, 80, 560, 430, 0.5], [10, 10, 80, 150, 0.9]], np.float32)
    points = np.stack([man, broken, np.zeros((17, 3), np.float32)])  # the last box is HOG's: no points
    with MediaPipeDetector(holistic=True, landmarks="full", finder="hog") as d:
        d._finder = _FakeFinder(boxes, points)
        monkeypatch.setattr(d, "_run", lambda bgr, to_image: None)  # BlazePose finds nobody anywhere
        state = dict(vars(d))
        kp = d(np.zeros((480, 640, 3), np.uint8))
        assert vars(d) == state  # a call keeps nothing of its image on the detector
    assert kp.num_people == 1 and kp.origins == ["movenet"]
    assert [r.split(":")[0] for r in kp.rejected] == ["movenet (460,80,560,430)"] and "limb_ratio" in kp.rejected[0]
    man[[1, 2]] = 0
    np.testing.assert_array_equal(to_coco(kp.body)[0], man)  # the points themselves, by name
    assert kp.body[0, 17:23, 2].max() == 0 and kp.left_hand[0, :, 2].max() == 0 and kp.face[0, :, 2].max() == 0
    t = targets(kp)
    assert set(t) == {"coco17"}
    np.testing.assert_array_equal(t["coco17"][0], man)
    (person,), reason = people_targets(kp, None, load_config())
    frame = person.targets
    assert reason is None and set(frame.points) == {"coco17"} and frame.image_size == (640, 480)
    assert kp.select([0, 0]).origins == ["movenet", "movenet"] and kp.choose("largest").origins == ["movenet"]


def test_the_detectors_kept_by_detect_are_closed(monkeypatch):
    from keypoints import mediapipe_detector

    class Detector:
        closed = False

        def close(self) -> None:
            self.closed = True

    kept = [Detector(), Detector()]
    monkeypatch.setattr(mediapipe_detector, "_SHARED", {(True, True, "heavy"): kept[0], (False, True, "full"): kept[1]})
    mediapipe_detector._close_shared()  # registered with atexit
    assert all(d.closed for d in kept) and not mediapipe_detector._SHARED
