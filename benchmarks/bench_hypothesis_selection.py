"""Which of the initialiser's hypotheses to keep after fitting them all: selection rules against an oracle.

    python benchmarks/bench_hypothesis_selection.py [--poses 128] [--seed 0] [--dataset DIR] [key.sub=value ...]

The frames of `bench_fit_accuracy.py` (same actors, cameras, noise and seed).
Each of the initialiser's K hypotheses (`initialiser`, `initialiser_2`, ...) is
fitted on its own with the fit config (VPoser by default): batch-invariant fits
make that exactly its row in a multi-start batch. Each frame then keeps one fit
by a rule: the first (regressed) hypothesis, the lowest final loss (what
multi-start fitting does), the medoid of the K fits (least mean PA-MPJPE to the
others), the lowest squared latent norm or VPoser latent-mixture negative
log-likelihood of the fitted pose (re-encoded), or the fit closest to the truth (an oracle).
A last row keeps no single fit: the mean of the K fitted skeletons (pelvis-relative joint
positions, not a body). Prints a markdown table: PA-MPJPE mean and 90th percentile (mm) over the 22 body
joints.
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
import prior  # noqa: E402
from benchmarks.fit_data import fitted_joints, held_out_views, prior_dataset  # noqa: E402
from fitting.config import load_config, load_options  # noqa: E402
from fitting.fitter import Fitter  # noqa: E402
from fitting.metrics import pa_mpjpe  # noqa: E402
from fitting.options import FitOptions  # noqa: E402
from fitting.priors import load_pose_space  # noqa: E402
from prior.vposer.latent_mixture import load_beside  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--poses", type=int, default=128, help="held-out poses to fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", help="folder with train.npz and val.npz (default: the prior's)")
    parser.add_argument("overrides", nargs="*", help="fit config overrides, e.g. init.initialiser=PATH")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg = load_config(None, args.overrides)
    model = body.create("anny")
    views = held_out_views(model, prior_dataset(args.dataset), args.poses, rng)
    space = load_pose_space(cfg.prior.kind, cfg.prior.path)
    k = Fitter(model, space, FitOptions.of(cfg)).initialiser().hypotheses
    joints, losses, poses = [], [], []
    for name in ["initialiser"] + [f"initialiser_{r}" for r in range(2, k + 1)]:
        t = time.perf_counter()
        results = Fitter(model, space, load_options(None, [*args.overrides, f"init.hypotheses=[{name}]"])).fit_frames(
            views.frames
        )
        joints.append(fitted_joints(model, results))
        losses.append([r.hypothesis_losses[0] for r in results])
        poses.append(np.stack([r.params["body_pose"].reshape(21, 3) for r in results]))
        print(f"{name}: {time.perf_counter() - t:.0f} s", flush=True)
    joints, losses = np.stack(joints, 1), np.array(losses).T  # (N, K, 22, 3), (N, K)
    n = len(views.frames)
    pa = 1000 * np.stack([pa_mpjpe(joints[:, i], views.joints) for i in range(k)], 1)
    apart = np.stack([np.stack([pa_mpjpe(joints[:, i], joints[:, j]) for j in range(k)], 1) for i in range(k)], 1)
    vposer_path = cfg.prior.path if cfg.prior.kind == "vposer" else None  # the shipped one for other priors
    vposer = prior.load(vposer_path).eval()
    with torch.no_grad():
        z = vposer.encode(torch.as_tensor(np.concatenate(poses), dtype=torch.float32)).mean
        z = z.reshape(k, n, -1).transpose(0, 1)  # (N, K, latent)
        rules = {
            "first hypothesis (regressed)": np.zeros(n, np.int64),
            "lowest final loss": np.nan_to_num(losses, nan=np.inf).argmin(1),
            "medoid of the fits": apart.sum(2).argmin(1),
            "squared norm of the fitted pose's latent": z.square().sum(-1).argmin(1).numpy(),
        }
        mixture = load_beside(vposer_path, vposer.latent_dim)
        if mixture is not None:
            nll = mixture.to("cpu", torch.float32).penalty(z.flatten(0, 1)).reshape(n, k)
            rules["latent mixture NLL of the fitted pose"] = nll.argmin(1).numpy()
    rules["closest to the truth (oracle)"] = pa.argmin(1)
    print(f"\n{n} frames, {k} hypotheses each\n")
    print("| keep per frame | PA-MPJPE mm | PA-MPJPE 90th pct mm |\n|---|---|---|")
    for rule, choice in rules.items():
        kept = pa[np.arange(n), choice]
        print(f"| {rule} | {kept.mean():.1f} | {np.percentile(kept, 90):.1f} |")
    mean = 1000 * pa_mpjpe((joints - joints[:, :, :1]).mean(1), views.joints)
    print(f"| none: the mean of the {k} fitted skeletons | {mean.mean():.1f} | {np.percentile(mean, 90):.1f} |")


if __name__ == "__main__":
    main()
