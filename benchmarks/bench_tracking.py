"""Tracking people through a synthetic multi-person video: identity switches, MOTA and IDF1.

    python benchmarks/bench_tracking.py [--clips 12] [--seed 0] [--mocap ../shared/data/mocap]

Every clip is 60 frames at 30 fps, 1280x720, f = 1000 px, camera 1.3 m high looking level.
2-5 people, each a window of a held-out actor's mocap that travels 1 m or more (HDM05 bk:
jogging in a circle, sneaking; CMU indian: dancing across the floor), resampled to 30 fps,
with its real root motion turned on the ground to head the clip's way, on Anny with a
random adult shape. Two layouts:

- apart: each person in a lane of their own, moving toward or away from the camera; clips
  whose people's boxes ever overlap are drawn again, so nobody overlaps anyone;
- crossing: people at 5-9 m walking across the view, alternately left and right, their paths
  crossing mid-clip: they overlap and hide each other.

Detections: the COCO-17 points projected with 3 px noise; each point missed with 10 %; points
inside a nearer person's box missed with 70 % (occlusion); a person with fewer than 5 points
left, and 5 % of the others at random, not detected; the detections of a frame shuffled.
Both trackers see the same detections: ours (`keypoints.tracking`, method "motion") and the
plain IoU + Hungarian baseline (method "iou"), both with `max_gap` 10. Metrics by PyPI
`motmetrics` (pip install -e .[bench]): ground truth is every person with 5 or more points
in the image in a frame; each detection is matched to the person it came from.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import body  # noqa: E402
from body.rotations import axis_angle_to_matrix, matrix_to_axis_angle  # noqa: E402
from body.shapes import random_shapes  # noqa: E402
from keypoints import Keypoints  # noqa: E402
from keypoints.tracking import track_people  # noqa: E402
from prior.data.load import load_motion  # noqa: E402

SIZE, FOCAL, HEIGHT, FRAMES, FPS = (1280, 720), 1000.0, 1.3, 60, 30
MIN_TRAVEL = 1.0  # m: the windows taken travel at least this far (people walking, not dancing in place)
# Held-out actors (benchmarks/fit_data.BENCHMARK_ACTORS): clips that travel.
CLIPS = {
    "hdm05_asfamc.tar.xz": ("/bk/HDM_bk_jog", "/bk/HDM_bk_sneak", "/bk/HDM_bk.asf"),
    "cmu_bvh.tar.xz": ("/indian/",),
}
CAMERA = np.diag([-1.0, -1.0, 1.0])  # world (y up, camera looking along +z) -> OpenCV camera axes (x right, y down)


def held_out_motions(mocap: Path, folder: Path) -> list:
    """The held-out clips with root motion, at 30 fps (extracted into `folder`)."""
    files = []
    for archive, wanted in CLIPS.items():
        with tarfile.open(mocap / archive) as tar:
            members = [m for m in tar.getmembers() if any(w in m.name for w in wanted)]
            tar.extractall(folder, members=members, filter="data")
            files += [folder / m.name for m in members if m.name.endswith((".amc", ".bvh"))]
    motions = []
    for f in sorted(files):
        m = load_motion(f)
        step = max(1, round(m.fps / FPS))
        pose, orient, transl = m.body_pose[::step], m.root_orient[::step], m.transl[::step]
        travel = np.linalg.norm(transl[FRAMES - 1 :, [0, 2]] - transl[: len(transl) - FRAMES + 1, [0, 2]], axis=1)
        starts = np.flatnonzero(travel >= MIN_TRAVEL)
        if len(starts):
            motions.append((pose, orient, transl, starts))
    return motions


def place(motion, rng: np.random.Generator, heading: float, middle: np.ndarray) -> tuple:
    """A 60-frame window of a motion that travels `MIN_TRAVEL` or more, turned about the vertical
    so that it travels toward `heading` (rad, 0: +x) and moved so that its path's middle is at
    `middle` (x, z on the floor)."""
    pose, orient, transl, starts = motion
    start = rng.choice(starts)
    pose, orient, transl = pose[start : start + FRAMES], orient[start : start + FRAMES], transl[start : start + FRAMES]
    travel = transl[-1] - transl[0]
    turn_by = heading - np.arctan2(-travel[2], travel[0])  # a turn by a about y takes (x, z) direction b to b + a
    turn = axis_angle_to_matrix(torch.tensor([0.0, turn_by, 0.0], dtype=torch.float64)).numpy()
    path = (transl - transl.mean(0)) @ turn.T
    path[:, [0, 2]] += middle
    path[:, 1] = transl[:, 1]
    rot = turn @ axis_angle_to_matrix(torch.as_tensor(orient, dtype=torch.float64)).numpy()
    return pose, rot, path


def project(model, people: list[tuple], shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, 17, 2) COCO-17 pixels and (N, T) depths of the people seen by the camera."""
    xy, depth = [], []
    for (pose, rot, path), shape in zip(people, shapes):
        orient = matrix_to_axis_angle(torch.as_tensor(CAMERA @ rot))
        cam = (path - [0.0, HEIGHT, 0.0]) @ CAMERA.T
        with torch.no_grad():
            out = model(
                global_orient=orient.float(),
                body_pose=torch.as_tensor(pose, dtype=torch.float32),
                shape=torch.as_tensor(shape, dtype=torch.float32).expand(FRAMES, -1),
                transl=torch.as_tensor(cam, dtype=torch.float32),
                full_mesh=False,
            )
        p = out.keypoints("coco17").double().numpy()
        xy.append(p[..., :2] / p[..., 2:] * FOCAL + np.array(SIZE) / 2)
        depth.append(cam[:, 2])
    return np.stack(xy), np.stack(depth)


def boxes_of(xy: np.ndarray) -> np.ndarray:
    return np.concatenate([xy.min(-2), xy.max(-2)], -1)


def overlaps(xy: np.ndarray) -> bool:
    """Whether any two people's boxes overlap in any frame."""
    b = boxes_of(xy)  # (N, T, 4)
    for i in range(len(b)):
        for j in range(i + 1, len(b)):
            w = np.minimum(b[i, :, 2], b[j, :, 2]) - np.maximum(b[i, :, 0], b[j, :, 0])
            h = np.minimum(b[i, :, 3], b[j, :, 3]) - np.maximum(b[i, :, 1], b[j, :, 1])
            if ((w > 0) & (h > 0)).any():
                return True
    return False


def detections(xy: np.ndarray, depth: np.ndarray, rng: np.random.Generator) -> tuple[list[Keypoints], list, list]:
    """Per frame: the detections (shuffled), the person each came from, and the people in view."""
    n, t = xy.shape[:2]
    frames, sources, truth = [], [], []
    full = boxes_of(xy)
    for f in range(t):
        inside = (xy[:, f, :, 0] >= 0) & (xy[:, f, :, 0] < SIZE[0]) & (xy[:, f, :, 1] >= 0) & (xy[:, f, :, 1] < SIZE[1])
        truth.append([i for i in range(n) if inside[i].sum() >= 5])
        people, source = [], []
        for i in truth[-1]:
            seen = inside[i] & (rng.random(17) >= 0.1)
            for j in range(n):
                if depth[j, f] < depth[i, f]:
                    x0, y0, x1, y1 = full[j, f]
                    behind = (
                        (xy[i, f, :, 0] > x0) & (xy[i, f, :, 0] < x1) & (xy[i, f, :, 1] > y0) & (xy[i, f, :, 1] < y1)
                    )
                    seen &= ~(behind & (rng.random(17) < 0.7))
            if seen.sum() < 5 or rng.random() < 0.05:
                continue
            pts = xy[i, f] + rng.normal(0, 3, (17, 2))
            people.append(np.concatenate([pts * seen[:, None], seen[:, None]], 1))
            source.append(i)
        order = rng.permutation(len(people))
        body = np.stack([people[k] for k in order]) if people else np.zeros((0, 17, 3))
        frames.append(Keypoints("coco17", body, frame_index=f))
        sources.append([source[k] for k in order])
    return frames, sources, truth


def clip(model, motions: list, rng: np.random.Generator, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """One clip's people: (N, T, 17, 2) pixels and (N, T) depths."""
    while True:
        n = int(rng.integers(2, 6))
        people = []
        for i in range(n):
            motion = motions[rng.integers(len(motions))]
            if layout == "apart":
                depth = rng.uniform(6, 9)
                lane = (i - (n - 1) / 2) * 0.85 * SIZE[0] / n * depth / FOCAL
                people.append(place(motion, rng, rng.choice([np.pi / 2, -np.pi / 2]), np.array([lane, depth])))
            else:
                heading = 0.0 if i % 2 else np.pi
                people.append(place(motion, rng, heading, np.array([rng.uniform(-0.3, 0.3), rng.uniform(5, 9)])))
        xy, depth = project(model, people, random_shapes(model, n, rng))
        if layout == "crossing" or not overlaps(xy):
            return xy, depth


def score(frames: list[Keypoints], sources: list, truth: list, method: str):
    """motmetrics' accumulator of one tracker on one clip."""
    import motmetrics as mm

    hyp = [dict() for _ in frames]
    for track in track_people(frames, max_gap=10, method=method):
        for f, i in track.people.items():
            hyp[f][i] = track.id
    acc = mm.MOTAccumulator(auto_id=True)
    for f, (src, gt) in enumerate(zip(sources, truth)):
        ids = [hyp[f][i] for i in range(len(src)) if i in hyp[f]]
        came = [src[i] for i in range(len(src)) if i in hyp[f]]
        dist = [[0.0 if c == g else np.nan for c in came] for g in gt]
        acc.update(gt, ids, dist)
    return acc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=12, help="clips per layout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mocap", type=Path, default=ROOT.parent / "shared" / "data" / "mocap")
    args = parser.parse_args(argv)
    import motmetrics as mm

    model = body.create("anny")
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        motions = held_out_motions(args.mocap, Path(tmp))
    rows = []
    for layout in ("apart", "crossing"):
        accs: dict[str, list] = {"motion": [], "iou": []}
        people = 0
        for _ in range(args.clips):
            xy, depth = clip(model, motions, rng, layout)
            people += len(xy)
            frames, sources, truth = detections(xy, depth, rng)
            for method in accs:
                accs[method].append(score(frames, sources, truth, method))
        for method, acc in accs.items():
            m = mm.metrics.create().compute_many(
                acc,
                metrics=["num_switches", "mota", "idf1", "num_false_positives", "num_misses"],
                generate_overall=True,
            )
            overall = m.loc["OVERALL"]
            rows.append((layout, people, method, int(overall.num_switches), overall.mota, overall.idf1))
    print(f"{len(motions)} held-out clips; {args.clips} clips of {FRAMES} frames per layout, seed {args.seed}\n")
    print("| layout | people | tracker | ID switches | MOTA | IDF1 |")
    print("|---|---|---|---|---|---|")
    for layout, people, method, switches, mota, idf1 in rows:
        name = "ours (box + pose + motion)" if method == "motion" else "IoU + Hungarian"
        print(f"| {layout} | {people} | {name} | {switches} | {100 * mota:.1f} | {100 * idf1:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
