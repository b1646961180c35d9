"""Poses for the fitting benchmarks (held-out mocap from the prior's dataset), and the joints of their fits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np
import torch

if TYPE_CHECKING:
    from body.base import BodyModel
    from fitting.fitter import FitResult
    from fitting.synthetic import Views

ROOT = Path(__file__).resolve().parents[1]


def prior_dataset(path: str | None = None) -> Path:
    """The prior's dataset folder (train.npz, val.npz; split by actor), built from the shared mocap if needed."""
    if path:
        return Path(path)
    from prior.data.splits import dataset_folder
    from prior.vposer.train import load_config

    data = load_config().data  # relative paths are meant from the repository root
    for key in ("mocap", "cache_dir"):
        if data[key] and not Path(data[key]).is_absolute():
            data[key] = str((ROOT / data[key]).resolve())
    return dataset_folder(data)


# SMPLify-X's schedule: the one the torso start needs (the mean pose is far from most poses).
FIVE_STAGES = ("camera", "body1", "body2", "body3", "body4", "body5")

# The fitting benchmarks' held-out actors (the prior's v1 validation set, so tables stay comparable).
BENCHMARK_ACTORS = ("cmu_bvh/indian", "hdm05_asfamc/bk")


def held_out_poses(folder: Path, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n random body poses (n, 21, 3) and root orientations (n, 3) of BENCHMARK_ACTORS from the
    validation split (all of it when the dataset records no actors)."""
    with np.load(folder / "val.npz") as val:
        rows = np.arange(len(val["body_pose"]))
        if "actor" in val.files:
            names = val["actors"][val["actor"]]
            rows = rows[np.isin(names, BENCHMARK_ACTORS)]
        pick = rng.choice(rows, size=n, replace=n > len(rows))
        return val["body_pose"][pick], val["root_orient"][pick]


def held_out_views(model: "BodyModel", folder: Path, n: int, rng: np.random.Generator) -> "Views":
    """The benchmarks' frames: n held-out poses (`held_out_poses`) seen by `fitting.synthetic.render_views`."""
    from fitting.synthetic import render_views

    return render_views(model, *held_out_poses(folder, n, rng), rng)


def fitted_joints(model: "BodyModel", results: "list[FitResult]") -> np.ndarray:
    """(N, 22, 3) body joints of fits, camera coordinates (m)."""
    return params_joints(model, [r.params for r in results])


def params_joints(model: "BodyModel", params: "list[Mapping[str, np.ndarray]]") -> np.ndarray:
    """(N, 22, 3) body joints, camera coordinates (m), of N sets of fitted parameters (a fit's
    `params`, or a saved npz: global_orient, body_pose, shape, transl)."""
    names = ("global_orient", "body_pose", "shape", "transl")
    batch = {k: torch.as_tensor(np.stack([p[k] for p in params])).to(model.device, model.dtype) for k in names}
    with torch.no_grad():
        return model(**batch).joints[:, :22].cpu().numpy()


def jittered_openpose_frames(
    source: Path, folder: Path, count: int, person_px: float = 0.0, point_px: float = 0.0, seed: int = 0
) -> list[Path]:
    """`count` copies of one OpenPose JSON file as `folder/frame_NNNN_keypoints.json`: every person
    moved by a seeded Gaussian shift of `person_px` and each confident point by one of `point_px`."""
    data = json.loads(source.read_text())
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(count):
        frame = json.loads(json.dumps(data))
        for person in frame["people"]:
            points = np.asarray(person["pose_keypoints_2d"], float).reshape(-1, 3)
            seen = points[:, 2] > 0
            points[seen, :2] += rng.normal(0.0, person_px, 2) + rng.normal(0.0, point_px, (int(seen.sum()), 2))
            person["pose_keypoints_2d"] = points.ravel().round(3).tolist()
        path = folder / f"frame_{i:04d}_keypoints.json"
        path.write_text(json.dumps(frame))
        written.append(path)
    return written
