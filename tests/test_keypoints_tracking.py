"""keypoints.tracking: identities kept through missed detections, gaps and people crossing."""

from __future__ import annotations

import numpy as np
import pytest

from keypoints import Keypoints
from keypoints.tracking import track_people

# A COCO-17 figure, 1 unit tall, facing the camera (x, y; y down): its left side at +x.
FIGURE = np.array(
    [
        [0.0, 0.05],
        [0.03, 0.03],
        [-0.03, 0.03],
        [0.06, 0.05],
        [-0.06, 0.05],  # nose, eyes, ears
        [0.12, 0.2],
        [-0.12, 0.2],
        [0.18, 0.4],
        [-0.18, 0.4],
        [0.2, 0.55],
        [-0.2, 0.55],  # arms
        [0.08, 0.55],
        [-0.08, 0.55],
        [0.09, 0.78],
        [-0.09, 0.78],
        [0.1, 1.0],
        [-0.1, 1.0],  # legs
    ]
)


def _person(x: float, y: float = 100.0, height: float = 200.0, stride: float = 0.0) -> np.ndarray:
    """(17, 3) points of a figure at image x (its centre), with the arms and legs swung by `stride`."""
    xy = FIGURE.copy()
    xy[[7, 9, 14, 16], 0] += stride
    xy[[8, 10, 13, 15], 0] -= stride
    return np.concatenate([xy * height + [x, y], np.ones((17, 1))], 1)


def _frames(people: list[list[np.ndarray]]) -> list[Keypoints]:
    return [
        Keypoints("coco17", np.stack(p) if p else np.zeros((0, 17, 3)), frame_index=i) for i, p in enumerate(people)
    ]


def _ids(tracks, frames: int) -> list[list[int]]:
    """Per frame, the track id of each detected person (in detection order)."""
    out = [dict() for _ in range(frames)]
    for t in tracks:
        for f, i in t.people.items():
            out[f][i] = t.id
    return [[d[i] for i in sorted(d)] for d in out]


def test_one_walker_keeps_one_id_through_missed_frames():
    people = [[_person(100 + 8 * t)] if t not in (5, 6, 12) else [] for t in range(20)]
    tracks = track_people(_frames(people), max_gap=3)
    assert len(tracks) == 1 and tracks[0].first == 0 and tracks[0].last == 19 and len(tracks[0].people) == 17


def test_a_gap_up_to_max_gap_is_bridged_and_a_longer_one_is_not():
    # walking right at 12 px a frame, hidden for 6 frames: predicted box carries the track
    people = [[_person(100 + 12 * t)] if not 5 <= t < 11 else [] for t in range(16)]
    assert len(track_people(_frames(people), max_gap=6)) == 1
    assert [t.first for t in track_people(_frames(people), max_gap=5)] == [0, 11]


def test_ids_in_order_of_first_appearance_and_two_people_crossing():
    # A walks right, B walks left and is the second one seen; they cross at frame 10,
    # where B (behind) is hidden for three frames; detection order flips at the crossing
    frames = []
    for t in range(21):
        a = _person(100 + 20 * t, stride=0.1 * np.sin(t))
        b = _person(500 - 20 * t, stride=-0.1 * np.sin(t))
        b[:, :2] = b[:, :2] * [-1, 1] + [2 * b[0, 0], 0]  # B mirrored: faces away
        frames.append([] if t == 0 else [b] if t < 9 and t % 2 else [a] if 9 <= t <= 11 else [b, a])
    frames[0] = [_person(100)]
    tracks = track_people(_frames(frames), max_gap=4)
    ids = _ids(tracks, len(frames))
    assert [t.id for t in tracks] == [0, 1]
    assert ids[0] == [0] and ids[1] == [1] and ids[2] == [1, 0] and ids[20] == [1, 0]
    assert tracks[0].people.keys() == set(range(21)) - {1, 3, 5, 7}
    assert len(tracks[1].people) == 21 - 1 - 3


def test_the_baseline_and_a_bad_method():
    people = [[_person(100 + 8 * t)] for t in range(5)]
    assert len(track_people(_frames(people), method="iou")) == 1
    with pytest.raises(ValueError, match="method"):
        track_people(_frames(people), method="kalman")


def test_people_are_searched_every_n_frames_and_carried_in_crops_between(tmp_path):
    import cv2

    from keypoints.video import detect_people

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for _ in range(5):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    asked = []

    def detector(frame, *, source, frame_index, timestamp_s, boxes):  # a search finds one person at x = 10 + index
        asked.append(None if boxes is None else boxes.round().tolist())
        points = np.zeros((1, 17, 3))
        points[0, :, 0], points[0, :, 1], points[0, :, 2] = 10 + frame_index, 20 + np.arange(17), 1
        return Keypoints("coco17", points if boxes is None or len(boxes) else points[:0], frame_index=frame_index)

    frames = list(detect_people(video, detector, search_every=3, name="clip"))
    assert [k.frame_index for k in frames] == list(range(5))
    assert asked == [None, [[10, 20, 10, 36]], [[11, 20, 11, 36]], None, [[13, 20, 13, 36]]]
