"""VPoser with its latent mixture against the GMM on the same task poses: paired differences with standard errors.

    python benchmarks/bench_prior_paired.py [--task-poses 500] [--seed 0] [--checkpoint PATH] [key=value ...]

`python -m prior.evaluation.evaluate`'s denoising and completion tasks and settings (the
same held-out poses, noise, starts and GMM), run for the shipped VPoser with its
latent mixture and for the GMM (8 full-covariance components); both see the
same poses, noise and starts, so their per-pose errors are paired. Prints a
markdown table: each prior's mean error (mm) and the mean difference (VPoser
minus GMM) with its standard error.
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
from prior.data.fk import rest_joints, smplx_forward_kinematics  # noqa: E402
from prior.evaluation import metrics  # noqa: E402
from prior.evaluation.evaluate import (  # noqa: E402
    NOISE_MM,
    Settings,
    baseline_candidates,
    checkpoint_config,
    held_out_and_training,
    task_errors,
    vposer_candidate,
)
from prior.vposer.checkpoint import load  # noqa: E402
from prior.vposer.latent_mixture import load_beside  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task-poses", type=int, default=500, help="held-out poses denoised and completed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, default=None, help="VPoser weights (default: the shipped)")
    parser.add_argument("overrides", nargs="*", help="training-config overrides of the poses used, e.g. data.fps=30")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    settings = Settings(task_poses=args.task_poses, seed=args.seed)
    try:
        model = load(args.checkpoint)
        mixture = load_beside(args.checkpoint, model.latent_dim)
        held_out, train_poses = held_out_and_training(checkpoint_config(args.checkpoint, args.overrides).data, settings)
    except (OSError, ValueError) as e:  # a missing or unreadable file, a bad override (ConfigError)
        parser.error(str(e))
    rest = rest_joints(body.create("anny"))
    task_j = smplx_forward_kinematics(held_out[: settings.task_poses], rest)
    if mixture is None:
        parser.error("the checkpoint has no latent mixture beside it; make one: python -m prior.vposer.latent_mixture")
    gmm = baseline_candidates(train_poses, settings, lambda msg: print(msg, flush=True))[0]
    errors = {}
    with torch.no_grad():
        for name, cand in (("VPoser + latent mixture", vposer_candidate("", model, mixture)), ("GMM", gmm)):
            t = time.perf_counter()
            den, comp = task_errors(cand.space, task_j, rest, settings)
            rows = {f"denoise {mm} mm": e for mm, e in zip(NOISE_MM, den)}
            for part, e in zip(metrics.BODY_PARTS, comp):
                rows[f"{part}, best of {settings.hypotheses}"] = e.min(-1).values
                rows[f"{part}, mean of {settings.hypotheses}"] = e.mean(-1)
            errors[name] = {k: 1000.0 * v.numpy() for k, v in rows.items()}
            print(f"{name}: {time.perf_counter() - t:.0f} s", flush=True)
    ours, gmm_errors = errors.values()
    print(f"\n{len(task_j)} task poses\n")
    print("| task | VPoser + latent mixture mm | GMM mm | difference mm (mean +- standard error) |")
    print("|---|---|---|---|")
    for task, a in ours.items():
        d = a - gmm_errors[task]
        se = d.std(ddof=1) / np.sqrt(len(d))
        print(f"| {task} | {a.mean():.2f} | {gmm_errors[task].mean():.2f} | {d.mean():+.2f} +- {se:.2f} |")


if __name__ == "__main__":
    main()
