"""Fitting accuracy on held-out mocap: VPoser prior vs no pose prior vs a GMM prior.

    python benchmarks/bench_fit_accuracy.py [--poses 128] [--seed 0] [--dataset DIR]

Poses of the actors held out from prior training (the validation split of the
prior's dataset, `configs/train_prior.yaml`) are put on Anny with random adult
shapes, seen from a random direction by a known camera (f = 1100 px,
1000x1000 px, 3-6 m away), projected to BODY_25 keypoints with 5 px Gaussian
noise and 20 % of the points dropped, and fitted with the real schedule. The
GMM (8 full-covariance components, as SMPLify's) is fitted on the same
training poses as the VPoser. Prints a markdown table: MPJPE after aligning
the pelvis, and PA-MPJPE (Procrustes), over the 22 body joints, in mm.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import body  # noqa: E402
from benchmarks.fit_data import held_out_poses, prior_dataset  # noqa: E402
from fitting.config import load_config  # noqa: E402
from fitting.fitter import Fitter  # noqa: E402
from fitting.metrics import mpjpe, pa_mpjpe  # noqa: E402
from fitting.priors import GmmSpace, PoseSpace, load_pose_space  # noqa: E402
from fitting.synthetic import render_views  # noqa: E402
from prior.gmm import fit_gmm  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--poses", type=int, default=128, help="held-out poses to fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", help="folder with train.npz and val.npz (default: the prior's)")
    parser.add_argument("--methods", default="vposer,none,gmm")
    parser.add_argument("--gmm-poses", type=int, default=30000, help="training poses used by the GMM's EM")
    parser.add_argument("overrides", nargs="*", help="fit config overrides, e.g. optimizer.max_iter=20")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    folder = prior_dataset(args.dataset)
    body_pose, root = held_out_poses(folder, args.poses, rng)
    with np.load(folder / "train.npz") as train:
        train_poses = train["body_pose"]
    cfg = load_config(None, args.overrides)
    model = body.create("anny")
    views = render_views(model, body_pose, root, rng)
    print(f"{len(body_pose)} held-out poses from {folder}; {len(train_poses)} training poses", flush=True)
    rows = []
    for method in args.methods.split(","):
        if method == "gmm":
            sub = train_poses[rng.choice(len(train_poses), min(args.gmm_poses, len(train_poses)), replace=False)]
            t = time.perf_counter()
            space: PoseSpace = GmmSpace(fit_gmm(sub.reshape(len(sub), -1), components=8, seed=args.seed))
            print(f"GMM fitted in {time.perf_counter() - t:.0f} s", flush=True)
        else:
            space = load_pose_space(method, cfg.prior.path if method == "vposer" else None)
        fitter = Fitter(model, space, cfg)
        t = time.perf_counter()
        results = fitter.fit_frames(views.frames)
        seconds = time.perf_counter() - t
        params = {
            k: torch.as_tensor(np.stack([r.params[k] for r in results]))
            for k in ("global_orient", "body_pose", "shape", "transl")
        }
        with torch.no_grad():
            joints = model(**params).joints[:, :22].numpy()
        e = 1000 * mpjpe(joints, views.joints)
        pa = 1000 * pa_mpjpe(joints, views.joints)
        iters = np.mean([r.iterations.sum() for r in results])
        rows.append((method, e.mean(), np.median(e), pa.mean(), seconds, iters))
        print(f"{method}: MPJPE {e.mean():.1f} mm, PA-MPJPE {pa.mean():.1f} mm, {seconds:.0f} s", flush=True)
    print("\n| pose prior | MPJPE mm | median MPJPE mm | PA-MPJPE mm | fit time s | L-BFGS iterations / frame |")
    print("|---|---|---|---|---|---|")
    for method, e, med, pa, seconds, iters in rows:
        print(f"| {method} | {e:.1f} | {med:.1f} | {pa:.1f} | {seconds:.0f} | {iters:.0f} |")


if __name__ == "__main__":
    main()
