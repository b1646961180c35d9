"""Several people in one camera: every person fitted, matched to the right truth, and as accurate as alone.

    python benchmarks/bench_multi_person.py [--frames 16] [--seed 0] [--threads 1] [--dataset DIR] [--work DIR]
                                            [--people]

Each frame holds 2-5 people, each a held-out pose (`fit_data.held_out_poses`: the validation actors,
held out of every network's training) turned to a random heading, on Anny with a random adult shape,
standing on one floor (the lowest vertex on it) 3-9 m in front of one camera (1920x1080 px,
f = 1100 px, 1.0-1.6 m above the floor, pitched 2-8 deg down), at random image columns over the
middle 60 % of the width, so that some overlap; no two closer than 0.7 m on the floor.
`fitting.synthetic.render_views` projects their BODY_25 points with 5 px noise and 20 % dropped
(points outside the image are undetected). Occlusion: a point is hidden when it falls inside a
projected triangle of a nearer person's mesh whose surface there (perspective-correct depth) is
nearer than the point.

Three runs of the real path (`fitting.pipeline.run` on a folder of OpenPose JSON files, `camera.focal`
the true focal, `camera.image_size` the true size, default fit settings; meshes, overlays and the
report page are not written): the scenes (one file per frame, people shuffled, occluded points
dropped); the single-person reference, every person alone in a file of their own with the same noise
and dropped points but no occlusion; and every person alone with the scene's occlusion drops too
(what the scene costs beyond the points it hides). Fits of a frame are matched to its people by
`scipy.optimize.linear_sum_assignment` on the mean 2D distance of the fit's projected BODY_25 points
(the npz's `projected_body25`) to the true ones; a match further than half the person's box height
counts as none; a mismatch is a fit matched to another person than the one its detection came from.
Prints markdown tables: the sample, people fitted / matched / missed / mismatched, PA-MPJPE over the
22 body joints (mm) of the scenes' fits against the same people fitted alone (all, by overlap, by
occlusion), the relative depth error of the pelvis and the share of pairs in a frame whose depth
order the fits get right, for each run; then whether the target holds (PA-MPJPE in scenes within
10 % of alone, no mismatch); with --people, every person's row.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from dataclasses import dataclass, field
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
# The fitted runs: the scenes; each person alone (no occlusion); each person alone with the scene's occlusion drops.
RUNS = ("scene", "alone", "hidden")


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


def write_inputs(scenes: list[Scene], folder: Path, rng: np.random.Generator) -> list[list[int]]:
    """OpenPose JSON files under `folder`: `scene/` one per frame (people shuffled, occluded points
    dropped; people with no point left are left out, as a detector would), `alone/` one per person
    (no occlusion) and `hidden/` one per person with the scene's occlusion drops. Returns per frame the
    person each entry of its scene file came from."""
    for run_name in RUNS:
        (folder / run_name).mkdir(parents=True)
    sources = []
    for f, scene in enumerate(scenes):
        hidden, whole = detections(scene, True), detections(scene, False)
        seen = [i for i, pts in enumerate(hidden) if pts[:, 2].any()]
        order = [seen[k] for k in rng.permutation(len(seen))]
        sources.append(order)
        write_openpose(Keypoints("body25", np.stack([hidden[i] for i in order])), folder / "scene" / _file(f))
        for run_name, points in (("alone", whole), ("hidden", hidden)):
            for i, pts in enumerate(points):
                if pts[:, 2].any():
                    write_openpose(Keypoints("body25", pts[None]), folder / run_name / _file(f, i))
    return sources


def _file(frame: int, person: int | None = None) -> str:
    return f"{_key(frame, person)}_keypoints.json"


def _key(frame: int, person: int | None = None) -> str:
    """The output key of a frame's scene file, or of one person's file of it."""
    return f"scene{frame:03d}" + ("" if person is None else f"_person{person}")


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
    """One true person's outcome in each run (`RUNS`; absent where not fitted, or in a scene not matched)."""

    frame: int
    overlapping: bool
    occluded: int  # points hidden by occlusion that render_views had kept
    pelvis_z: float
    pa: dict[str, float] = field(default_factory=dict)  # run -> PA-MPJPE (mm)
    z: dict[str, float] = field(default_factory=dict)  # run -> fitted pelvis depth (m)
    mismatched: bool = False


def score(
    model: BodyModel, scenes: list[Scene], sources: list[list[int]], fits_in: Path
) -> tuple[list[Person], dict[str, int]]:
    """Every true person's errors in each run (`fits_in`/RUN), and the counts of the scenes' fits and
    of their matches and mismatches, and of the people fitted in the single-person runs."""
    people: list[Person] = []
    counts = dict.fromkeys(("fits", "matched", "mismatched", *RUNS), 0)
    for f, scene in enumerate(scenes):
        truth = scene.views.joints
        kept = [scene.views.frames[i].points["body25"][0][:, 2] > 0 for i in range(len(truth))]
        rows = [
            Person(f, bool(scene.overlapping[i]), int((scene.occluded[i] & kept[i]).sum()), float(truth[i, 0, 2]))
            for i in range(len(truth))
        ]
        fits = read_fits(fits_in / "scene", _key(f))
        counts["fits"] += len(fits)
        if fits:
            joints = params_joints(model, fits)
            for k, i in match(fits, scene.pixels).items():
                rows[i].pa["scene"] = 1000 * float(pa_mpjpe(joints[k : k + 1], truth[i : i + 1])[0])
                rows[i].z["scene"] = float(joints[k, 0, 2])
                rows[i].mismatched = sources[f][int(fits[k]["person_id"])] != i
                counts["matched"] += 1
                counts["mismatched"] += rows[i].mismatched
        for run_name in ("alone", "hidden"):
            for i, row in enumerate(rows):
                alone = read_fits(fits_in / run_name, _key(f, i))
                if alone:
                    joints = params_joints(model, alone)
                    row.pa[run_name] = 1000 * float(pa_mpjpe(joints, truth[i : i + 1])[0])
                    row.z[run_name] = float(joints[0, 0, 2])
                    counts[run_name] += 1
        people += rows
    return people, counts


def depth_order(people: list[Person], run_name: str, min_gap: float) -> tuple[int, int]:
    """(pairs, pairs ordered right) of people of one frame fitted in every run whose true pelvis depths
    differ by more than `min_gap` m, by the fitted pelvis depth of `run_name`."""
    pairs = right = 0
    everywhere = [p for p in people if len(p.z) == len(RUNS)]
    for a, b in itertools.combinations(everywhere, 2):
        if a.frame != b.frame or abs(a.pelvis_z - b.pelvis_z) <= min_gap:
            continue
        pairs += 1
        right += (a.z[run_name] > b.z[run_name]) == (a.pelvis_z > b.pelvis_z)
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
        sources = write_inputs(scenes, work / "inputs", rng)
        seconds = {r: fit(work / "inputs" / r, work / "fits" / r, args.threads) for r in RUNS}
        people, tally = score(model, scenes, sources, work / "fits")
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
    took = ", ".join(f"{seconds[r]:.0f} s ({r})" for r in RUNS)
    print(
        f"\nseed {args.seed}: {len(scenes)} frames ({_per_frame(scenes)}), {n} people; {overlap} people "
        f"({100 * overlap / n:.0f} %) overlap another's box (IoU > 0.1); occlusion hid {hidden} of the {kept} "
        f"points left after the random drops ({100 * hidden / max(kept, 1):.1f} %), "
        f"{sum(p.occluded > 0 for p in people)} people lost some; fits took {took} on {args.threads} thread(s)\n"
    )
    print("| run | people | fits | matched | missed | mismatched |")
    print("|---|---|---|---|---|---|")
    print(f"| scenes | {n} | {tally['fits']} | {tally['matched']} | {n - tally['matched']} | {tally['mismatched']} |")
    for run_name, label in (("alone", "alone"), ("hidden", "alone, occlusion drops")):
        print(f"| {label} | {n} | {tally[run_name]} | - | {n - tally[run_name]} | - |")
    everywhere = [p for p in people if len(p.pa) == len(RUNS)]
    subsets = {
        "all fitted in every run": everywhere,
        "overlapping (IoU > 0.1)": [p for p in everywhere if p.overlapping],
        "not overlapping": [p for p in everywhere if not p.overlapping],
        "some points occluded": [p for p in everywhere if p.occluded],
        "none occluded": [p for p in everywhere if not p.occluded],
    }
    print(
        "\n| people | n | PA-MPJPE alone mm | alone, occlusion drops | in scene | scene / alone "
        "| scene / alone with drops | p90 alone | p90 in scene |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, sub in subsets.items():
        if not sub:
            print(f"| {name} | 0 |" + " - |" * 7)
            continue
        a, h, m = (np.array([p.pa[r] for p in sub]) for r in ("alone", "hidden", "scene"))
        print(
            f"| {name} | {len(sub)} | {a.mean():.1f} | {h.mean():.1f} | {m.mean():.1f} | {m.mean() / a.mean():.3f} "
            f"| {m.mean() / h.mean():.3f} | {np.percentile(a, 90):.1f} | {np.percentile(m, 90):.1f} |"
        )
    print(
        "\n| run | pelvis depth error % (mean abs) | signed % | pairs | depth order right | pairs > 1 m apart | right |"
    )
    print("|---|---|---|---|---|---|---|")
    for run_name, label in (("alone", "alone"), ("hidden", "alone, occlusion drops"), ("scene", "scenes")):
        z = np.array([p.z[run_name] for p in everywhere])
        truth = np.array([p.pelvis_z for p in everywhere])
        rel = 100 * (z - truth) / truth
        pairs, right = depth_order(people, run_name, 0.0)
        far, far_right = depth_order(people, run_name, 1.0)
        print(
            f"| {label} | {np.abs(rel).mean():.1f} | {rel.mean():+.1f} | {pairs} | {100 * right / max(pairs, 1):.1f} % "
            f"| {far} | {100 * far_right / max(far, 1):.1f} % |"
        )
    ratio = np.mean([p.pa["scene"] for p in everywhere]) / np.mean([p.pa["alone"] for p in everywhere])
    verdict = "holds" if ratio <= TARGET and tally["mismatched"] == 0 else "does not hold"
    print(
        f"\ntarget (every person fitted and matched to the right truth; PA-MPJPE in scenes within 10 % of alone): "
        f"{verdict}: ratio {ratio:.3f} over {len(everywhere)} people, {tally['mismatched']} mismatched, "
        f"{n - tally['matched']} of {n} people not matched ({n - tally['alone']} not fitted even alone)"
    )


def list_people(people: list[Person]) -> None:
    """One row per person: frame, true pelvis depth, overlap, occluded points, each run's error and depth."""
    print(
        "\n| frame | depth m | overlaps | occluded points | PA alone mm | PA alone, drops | PA in scene "
        "| z alone, drops, scene |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for p in people:
        pa = " | ".join(f"{p.pa.get(r, np.nan):.1f}" for r in ("alone", "hidden", "scene"))
        z = ", ".join(f"{p.z.get(r, np.nan):.2f}" for r in ("alone", "hidden", "scene"))
        print(
            f"| {p.frame} | {p.pelvis_z:.2f} | {'yes' if p.overlapping else 'no'} | {p.occluded} | {pa}"
            f"{' (mismatched)' if p.mismatched else ''} | {z} |"
        )


def _per_frame(scenes: list[Scene]) -> str:
    """How many frames hold each number of people, e.g. "2 people: 5, 3 people: 4"."""
    sizes = np.bincount([len(s.views.joints) for s in scenes], minlength=PEOPLE[1] + 1)
    return ", ".join(f"{k} people: {sizes[k]}" for k in range(PEOPLE[0], PEOPLE[1] + 1) if sizes[k])


if __name__ == "__main__":
    sys.exit(main())
