"""Several people in one camera: every person fitted, matched to the right truth, and as accurate as alone.

    python benchmarks/bench_multi_person.py [--frames 16] [--seed 0] [--threads 1] [--dataset DIR] [--work DIR]

Each frame holds 2-5 people, each a held-out pose (`fit_data.held_out_poses`: the validation actors,
held out of every network's training) turned to a random heading, on Anny with a random adult shape,
standing on one floor (the lowest vertex on it) 3-9 m in front of one camera (1920x1080 px,
f = 1100 px, 1.0-1.6 m above the floor, pitched 2-8 deg down), at random image columns over the
middle 60 % of the width, so that some overlap; no two closer than 0.7 m on the floor. `fitting.synthetic.render_views`
projects their BODY_25 points with 5 px noise and 20 % dropped (points outside the image are
undetected). Occlusion: a point is hidden when it falls inside a projected triangle of a nearer
person's mesh whose surface there (perspective-correct depth) is nearer than the point.

Two runs of the real path (`fitting.pipeline.run` on a folder of OpenPose JSON files, `camera.focal`
the true focal, `camera.image_size` the true size, default fit settings; meshes, overlays and the
report page are not written): the scenes (one file per frame, people shuffled, occluded points
dropped), and the single-person reference: every person alone in a file of their own, with the same
noise and dropped points but no occlusion. Fits of a frame are matched to its people by
`scipy.optimize.linear_sum_assignment` on the mean 2D distance of the fit's projected BODY_25 points
(the npz's `projected_body25`) to the true ones; a match further than half the person's box height
counts as none; a mismatch is a fit matched to another person than the one its detection came from.
Prints markdown tables: the sample, people fitted / matched / missed / mismatched, PA-MPJPE over the
22 body joints (mm) of the scenes' fits against the same people fitted alone (all, by overlap, by
occlusion), the relative depth error of the pelvis and the share of pairs in a frame whose depth
order the fits get right; then whether the target holds (PA-MPJPE in scenes within 10 % of alone).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import body  # noqa: E402
from benchmarks.fit_data import held_out_poses, params_joints, prior_dataset  # noqa: E402
from body.base import BodyModel  # noqa: E402
from body.rotations import axis_angle_to_matrix, matrix_to_axis_angle  # noqa: E402
from body.shapes import random_shapes  # noqa: E402
from fitting.config import load_config  # noqa: E402
from fitting.metrics import pa_mpjpe  # noqa: E402
from fitting.pipeline import run  # noqa: E402
from fitting.synthetic import Views, render_views  # noqa: E402
from keypoints import Keypoints  # noqa: E402
from keypoints.openpose_json import write_openpose  # noqa: E402

SIZE, FOCAL = (1920, 1080), 1100.0
CAMERA_HEIGHT, PITCH_DEG, DISTANCE = (1.0, 1.6), (2.0, 8.0), (3.0, 9.0)
PEOPLE, MIN_APART, NOISE_PX, DROP = (2, 5), 0.7, 5.0, 0.2
Y_DOWN = np.diag([1.0, -1.0, -1.0])  # render_views' own turn at azimuth 0 and elevation 0
TARGET = 1.10  # PA-MPJPE in scenes at most 10 % above the same people fitted alone


@dataclass
class Scene:
    """One frame's people: render_views' detections and truth, plus what the image geometry adds."""

    views: Views  # frames: each person's noisy points with the random drops; joints, params: truth
    pixels: np.ndarray  # (P, 25, 2) true BODY_25 pixels
    occluded: np.ndarray  # (P, 25) bool: behind a nearer person's mesh
    overlapping: np.ndarray  # (P,) bool: keypoint box IoU > 0.1 with another person's


def camera_rotation(pitch: float) -> np.ndarray:
    """World (y up, the camera looking along -z) to camera (x right, y down, z forward), pitched down."""
    forward = np.array([0.0, -np.sin(pitch), -np.cos(pitch)])
    right = np.array([1.0, 0.0, 0.0])
    return np.stack([right, np.cross(forward, right), forward])


def floor_spots(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) floor positions (x, distance ahead; m): depths in DISTANCE, pelvis image columns uniform
    over the middle 60 % of the width (so that some people overlap); drawn again while two stand
    closer than MIN_APART."""
    while True:
        depth = rng.uniform(*DISTANCE, n)
        column = rng.uniform(0.2, 0.8, n) * SIZE[0]
        spots = np.stack([(column - SIZE[0] / 2) / FOCAL * depth, depth], 1)
        gaps = np.linalg.norm(spots[:, None] - spots[None], axis=-1) + np.eye(n) * 1e9
        if gaps.min() >= MIN_APART:
            return spots


def draw_scene(model: BodyModel, pose: np.ndarray, root: np.ndarray, rng: np.random.Generator) -> Scene:
    """The people of one frame (module docstring) from their poses (P, 21, 3) and root orientations (P, 3)."""
    n = len(pose)
    height, pitch = rng.uniform(*CAMERA_HEIGHT), np.radians(rng.uniform(*PITCH_DEG))
    rot = camera_rotation(pitch)
    heading = np.stack([np.zeros(n), rng.uniform(-np.pi, np.pi, n), np.zeros(n)], 1)
    turn = axis_angle_to_matrix(torch.as_tensor(heading)).numpy()
    orient = rot @ turn @ axis_angle_to_matrix(torch.as_tensor(root, dtype=torch.float64)).numpy()
    shape = random_shapes(model, n, rng)
    with torch.no_grad():
        rest = model(
            global_orient=matrix_to_axis_angle(torch.as_tensor(orient)).to(model.dtype),
            body_pose=torch.as_tensor(pose, dtype=model.dtype),
            shape=torch.as_tensor(shape, dtype=model.dtype),
        )
    verts, pelvis = rest.vertices.double().numpy(), rest.joints[:, 0].double().numpy()
    up = rot @ np.array([0.0, 1.0, 0.0])
    spots = floor_spots(n, rng)
    ground = (np.stack([spots[:, 0], np.zeros(n), -spots[:, 1]], 1) - [0.0, height, 0.0]) @ rot.T
    lift = pelvis @ up - (verts @ up).min(1)  # the pelvis' height above the person's lowest vertex
    transl = ground - pelvis + lift[:, None] * up
    views = render_views(
        model, pose, matrix_to_axis_angle(torch.as_tensor(Y_DOWN @ orient)).numpy(), rng, noise_px=NOISE_PX,
        drop=DROP, image_size=SIZE, focal=FOCAL, azimuth_deg=(0.0, 0.0), elevation_deg=(0.0, 0.0), shape=shape,
        transl=transl,
    )  # fmt: skip
    with torch.no_grad():
        out = model(**{k: torch.as_tensor(v, dtype=model.dtype) for k, v in views.params.items()})
    points, verts = out.keypoints("body25").double().numpy(), out.vertices.double().numpy()
    pixels = to_pixels(points)
    occluded = np.zeros(pixels.shape[:2], bool)
    faces = model.faces.cpu().numpy()
    for i, j in itertools.permutations(range(n), 2):
        occluded[i] |= surface_depth(pixels[i], to_pixels(verts[j])[faces], verts[j][faces][..., 2]) < points[i, :, 2]
    return Scene(views, pixels, occluded, overlapping(pixels))


def to_pixels(points: np.ndarray) -> np.ndarray:
    """(..., 2) pixels of camera-frame points (..., 3)."""
    return points[..., :2] / points[..., 2:] * FOCAL + np.array(SIZE) / 2


def surface_depth(points: np.ndarray, triangles: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """(K,) depth of the nearest of the projected `triangles` (F, 3, 2) px, with vertex depths (F, 3),
    covering each pixel of `points` (K, 2); inf where none does (perspective-correct: 1/z interpolated)."""
    lo, hi = points.min(0), points.max(0)
    near = (triangles.max(1) >= lo).all(1) & (triangles.min(1) <= hi).all(1)
    tri, z = triangles[near], depths[near]
    if not len(tri):
        return np.full(len(points), np.inf)
    a, e0, e1 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    det = e0[:, 0] * e1[:, 1] - e1[:, 0] * e0[:, 1]
    det = np.where(det == 0, np.nan, det)
    d = points[:, None] - a[None]
    b1 = (d[..., 0] * e1[:, 1] - e1[:, 0] * d[..., 1]) / det
    b2 = (e0[:, 0] * d[..., 1] - d[..., 0] * e0[:, 1]) / det
    b0 = 1 - b1 - b2
    inside = (b0 >= 0) & (b1 >= 0) & (b2 >= 0)
    inverse = b0 / z[:, 0] + b1 / z[:, 1] + b2 / z[:, 2]
    return np.where(inside, 1 / np.where(inside, inverse, 1.0), np.inf).min(1)


def overlapping(pixels: np.ndarray) -> np.ndarray:
    """(P,) whether each person's keypoint box has IoU > 0.1 with another person's."""
    boxes = np.concatenate([pixels.min(1), pixels.max(1)], 1)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], 1)
    wh = (np.minimum(boxes[:, None, 2:], boxes[None, :, 2:]) - np.maximum(boxes[:, None, :2], boxes[None, :, :2])).clip(
        0
    )
    inter = wh.prod(-1)
    iou = inter / (area[:, None] + area[None] - inter)
    np.fill_diagonal(iou, 0.0)
    return (iou > 0.1).any(1)


def detections(scene: Scene, occlusion: bool) -> list[np.ndarray]:
    """Each person's (25, 3) BODY_25 detection: render_views' points, with the occluded ones removed."""
    out = []
    for i, frame in enumerate(scene.views.frames):
        pts = frame.points["body25"][0].copy()
        if occlusion:
            pts[scene.occluded[i]] = 0.0
        out.append(pts)
    return out


def write_inputs(scenes: list[Scene], folder: Path, rng: np.random.Generator) -> tuple[Path, Path, list[list[int]]]:
    """OpenPose JSON folders `scenes` (one file per frame, people shuffled, occluded points dropped;
    people with no point left are not in it) and `alone` (one file per person, no occlusion), and per
    frame the person each entry of its file came from."""
    multi, alone = folder / "scenes", folder / "alone"
    multi.mkdir(parents=True)
    alone.mkdir(parents=True)
    sources = []
    for f, scene in enumerate(scenes):
        seen = [i for i, pts in enumerate(detections(scene, True)) if pts[:, 2].any()]
        order = [seen[k] for k in rng.permutation(len(seen))]
        hidden = detections(scene, True)
        write_openpose(
            Keypoints("body25", np.stack([hidden[i] for i in order])), multi / f"scene{f:03d}_keypoints.json"
        )
        sources.append(order)
        for i, pts in enumerate(detections(scene, False)):
            if pts[:, 2].any():
                write_openpose(Keypoints("body25", pts[None]), alone / f"scene{f:03d}_alone{i}_keypoints.json")
    return multi, alone, sources


def fit(folder: Path, out: Path, threads: int) -> float:
    """Seconds to fit a folder of OpenPose files through `fitting.pipeline.run` (true camera, default fit)."""
    cfg = load_config(
        None,
        [f"camera.focal={FOCAL}", f"camera.image_size=[{SIZE[0]},{SIZE[1]}]", f"threads={threads}"]
        + ["output.mesh=false", "output.overlay=false", "output.report=false"],
    )
    started = time.perf_counter()
    run(folder, out, cfg, progress=False)
    return time.perf_counter() - started


def read_fits(out: Path, key: str) -> list[dict[str, np.ndarray]]:
    """The fits saved for a frame: `KEY.person_<id>.npz` each, or `KEY.npz` for one person."""
    files = sorted(out.glob(f"{key}.person_*.npz")) or [f for f in [out / f"{key}.npz"] if f.exists()]
    fits = []
    for f in files:
        with np.load(f) as npz:
            fits.append({k: npz[k] for k in npz.files})
    return fits


def match(fits: list[dict[str, np.ndarray]], pixels: np.ndarray) -> dict[int, int]:
    """Fit index -> person index by the Hungarian assignment of mean 2D point distances; pairs further
    than half the person's box height are left out."""
    if not fits:
        return {}
    cost = np.array([[np.nanmean(np.linalg.norm(f["projected_body25"] - p, axis=-1)) for p in pixels] for f in fits])
    height = np.ptp(pixels[..., 1], axis=1)
    rows, cols = linear_sum_assignment(np.nan_to_num(cost, nan=1e9))
    return {int(r): int(c) for r, c in zip(rows, cols) if cost[r, c] <= 0.5 * height[c]}


@dataclass
class Person:
    """One true person's outcome in both runs (NaN where not fitted or matched)."""

    frame: int
    overlapping: bool
    occluded: int  # points hidden by occlusion that render_views had kept
    pelvis_z: float
    pa_multi: float = np.nan
    z_multi: float = np.nan
    pa_alone: float = np.nan
    z_alone: float = np.nan
    mismatched: bool = False


def score(
    model: BodyModel, scenes: list[Scene], sources: list[list[int]], multi_out: Path, alone_out: Path
) -> tuple[list[Person], dict[str, int]]:
    """Every true person's errors in both runs, and the counts of fits, matches, misses and mismatches."""
    people: list[Person] = []
    counts = dict(fits=0, matched=0, mismatched=0, fits_alone=0)
    for f, scene in enumerate(scenes):
        truth = scene.views.joints
        kept = [scene.views.frames[i].points["body25"][0][:, 2] > 0 for i in range(len(truth))]
        rows = [
            Person(f, bool(scene.overlapping[i]), int((scene.occluded[i] & kept[i]).sum()), float(truth[i, 0, 2]))
            for i in range(len(truth))
        ]
        fits = read_fits(multi_out, f"scene{f:03d}")
        counts["fits"] += len(fits)
        if fits:
            joints = params_joints(model, fits)
            for k, i in match(fits, scene.pixels).items():
                rows[i].pa_multi = 1000 * float(pa_mpjpe(joints[k : k + 1], truth[i : i + 1])[0])
                rows[i].z_multi = float(joints[k, 0, 2])
                rows[i].mismatched = sources[f][int(fits[k]["person_id"])] != i
                counts["matched"] += 1
                counts["mismatched"] += rows[i].mismatched
        for i, row in enumerate(rows):
            alone = read_fits(alone_out, f"scene{f:03d}_alone{i}")
            if alone:
                joints = params_joints(model, alone)
                row.pa_alone = 1000 * float(pa_mpjpe(joints, truth[i : i + 1])[0])
                row.z_alone = float(joints[0, 0, 2])
                counts["fits_alone"] += 1
        people += rows
    return people, counts


def depth_order(people: list[Person], run: str, min_gap: float) -> tuple[int, int]:
    """(pairs, pairs ordered right) of people of one frame fitted in both runs whose true pelvis depths
    differ by more than `min_gap` m, by the fitted pelvis depth of `run` ("multi" or "alone")."""
    pairs = right = 0
    both = [p for p in people if np.isfinite(p.z_multi) and np.isfinite(p.z_alone)]
    for a, b in itertools.combinations(both, 2):
        if a.frame != b.frame or abs(a.pelvis_z - b.pelvis_z) <= min_gap:
            continue
        za, zb = getattr(a, f"z_{run}"), getattr(b, f"z_{run}")
        pairs += 1
        right += (za > zb) == (a.pelvis_z > b.pelvis_z)
    return pairs, right


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16, help="frames of 2-5 people (~3.5 people each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dataset", help="folder with val.npz (default: the prior's)")
    parser.add_argument("--work", type=Path, help="keep the JSON inputs and fits here (default: a temporary folder)")
    parser.add_argument("--people", action="store_true", help="also list every person's outcome")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    model = body.create("anny")
    counts = rng.integers(PEOPLE[0], PEOPLE[1] + 1, args.frames)
    pose, root = held_out_poses(prior_dataset(args.dataset), int(counts.sum()), rng)
    ends = np.cumsum(counts)
    scenes = [draw_scene(model, pose[e - c : e], root[e - c : e], rng) for c, e in zip(counts, ends)]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        multi, alone, sources = write_inputs(scenes, work / "inputs", rng)
        seconds = {"scenes": fit(multi, work / "fit_scenes", args.threads)}
        seconds["alone"] = fit(alone, work / "fit_alone", args.threads)
        people, tally = score(model, scenes, sources, work / "fit_scenes", work / "fit_alone")
    report(people, tally, scenes, seconds, args)
    if args.people:
        list_people(people)
    return 0


def report(
    people: list[Person],
    tally: dict[str, int],
    scenes: list[Scene],
    seconds: dict[str, float],
    args: argparse.Namespace,
) -> None:
    """The markdown tables and the target's verdict."""
    n = len(people)
    kept = sum(int((f.points["body25"][0][:, 2] > 0).sum()) for s in scenes for f in s.views.frames)
    hidden = sum(p.occluded for p in people)
    overlap = sum(p.overlapping for p in people)
    print(
        f"\nseed {args.seed}: {len(scenes)} frames ({_per_frame(scenes)}), {n} people; {overlap} people "
        f"({100 * overlap / n:.0f} %) overlap another's box (IoU > 0.1); occlusion hid {hidden} of the {kept} "
        f"points left after the random drops ({100 * hidden / max(kept, 1):.1f} %), "
        f"{sum(p.occluded > 0 for p in people)} people lost some; fits took {seconds['scenes']:.0f} s (scenes) "
        f"and {seconds['alone']:.0f} s (alone) on {args.threads} thread(s)\n"
    )
    fitted_alone = tally["fits_alone"]
    matched = tally["matched"]
    print("| run | people | fits | matched | missed | mismatched |")
    print("|---|---|---|---|---|---|")
    print(f"| scenes | {n} | {tally['fits']} | {matched} | {n - matched} | {tally['mismatched']} |")
    print(f"| alone | {n} | {fitted_alone} | - | {n - fitted_alone} | - |")
    both = [p for p in people if np.isfinite(p.pa_multi) and np.isfinite(p.pa_alone)]
    subsets = {
        "all fitted in both": both,
        "overlapping (IoU > 0.1)": [p for p in both if p.overlapping],
        "not overlapping": [p for p in both if not p.overlapping],
        "some points occluded": [p for p in both if p.occluded],
        "none occluded": [p for p in both if not p.occluded],
    }
    print("\n| people | n | PA-MPJPE alone mm | PA-MPJPE in scene mm | ratio | p90 alone | p90 in scene |")
    print("|---|---|---|---|---|---|---|")
    for name, sub in subsets.items():
        if not sub:
            print(f"| {name} | 0 | - | - | - | - | - |")
            continue
        a, m = np.array([p.pa_alone for p in sub]), np.array([p.pa_multi for p in sub])
        print(
            f"| {name} | {len(sub)} | {a.mean():.1f} | {m.mean():.1f} | {m.mean() / a.mean():.3f} "
            f"| {np.percentile(a, 90):.1f} | {np.percentile(m, 90):.1f} |"
        )
    print(
        "\n| run | pelvis depth error % (mean abs) | signed % | pairs | depth order right | pairs > 1 m apart | right |"
    )
    print("|---|---|---|---|---|---|---|")
    for run_name, label in (("alone", "alone"), ("multi", "scenes")):
        z = np.array([getattr(p, f"z_{run_name}") for p in both])
        truth = np.array([p.pelvis_z for p in both])
        rel = 100 * (z - truth) / truth
        pairs, right = depth_order(people, run_name, 0.0)
        far, far_right = depth_order(people, run_name, 1.0)
        print(
            f"| {label} | {np.abs(rel).mean():.1f} | {rel.mean():+.1f} | {pairs} | {100 * right / max(pairs, 1):.1f} % "
            f"| {far} | {100 * far_right / max(far, 1):.1f} % |"
        )
    ratio = np.mean([p.pa_multi for p in both]) / np.mean([p.pa_alone for p in both])
    verdict = "holds" if ratio <= TARGET and tally["mismatched"] == 0 else "does not hold"
    print(
        f"\ntarget (every person fitted and matched to the right truth; PA-MPJPE in scenes within 10 % of alone): "
        f"{verdict}: ratio {ratio:.3f} over {len(both)} people, {tally['mismatched']} mismatched, "
        f"{n - matched} of {n} people not matched ({n - fitted_alone} not fitted even alone)"
    )


def list_people(people: list[Person]) -> None:
    """One row per person: frame, true pelvis depth, overlap, occluded points, errors and depths of both runs."""
    print("\n| frame | depth m | overlaps | occluded points | PA alone mm | PA in scene mm | z alone | z in scene |")
    print("|---|---|---|---|---|---|---|---|")
    for p in people:
        print(
            f"| {p.frame} | {p.pelvis_z:.2f} | {'yes' if p.overlapping else 'no'} | {p.occluded} | {p.pa_alone:.1f} "
            f"| {p.pa_multi:.1f}{' (mismatched)' if p.mismatched else ''} | {p.z_alone:.2f} | {p.z_multi:.2f} |"
        )


def _per_frame(scenes: list[Scene]) -> str:
    """How many frames hold each number of people, e.g. "2 people: 5, 3 people: 4"."""
    sizes = np.bincount([len(s.views.joints) for s in scenes], minlength=PEOPLE[1] + 1)
    return ", ".join(f"{k} people: {sizes[k]}" for k in range(PEOPLE[0], PEOPLE[1] + 1) if sizes[k])


if __name__ == "__main__":
    sys.exit(main())
