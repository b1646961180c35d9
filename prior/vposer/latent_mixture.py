"""VPoser's latent prior fitted after training: a Gaussian mixture on the training poses' latent codes.

    python -m prior.vposer.latent_mixture [--checkpoint PATH] [--components 8] [--seed 0] [key=value ...]

VPoser's users put N(0, I) on the latent z. Trained with a small KL weight (ours 0.0005),
the codes of real poses do have about unit spread per dimension, but they fill the ball
unevenly. A full-covariance mixture fitted to the encoder means of the training poses is
a better prior on z: ex-post density estimation (Ghosh et al. 2020, "From variational to
deterministic autoencoders"), the second stage of Dai & Wipf's two-stage VAE (2019). It
uses 8 components, like the pose-space GMM baseline (SMPLify's). `prior.evaluation.evaluate` reports
VPoser with it. The fitter keeps N(0, I) (0.5 |z|^2), which fitted held-out frames as well
(docs/prior.md, "Latent mixture").

The mixture is written beside the checkpoint as STEM_latent_gmm.npz, with its settings
in STEM_latent_gmm.yaml. `prior.vposer.train` fits one at the end of every run.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import torch
from omegaconf import OmegaConf

from configs.files import write_text
from prior.data.splits import load_splits
from prior.vposer.checkpoint import DEFAULT_CHECKPOINT, load
from prior.vposer.config import RUN_WEIGHTS, checkpoint_config
from prior.vposer.gmm import GaussianMixture, fit_gmm
from prior.vposer.model import VPoser

COMPONENTS = 8
SUFFIX = "_latent_gmm"


def mixture_path(checkpoint: Path) -> Path:
    """Where the latent mixture of a checkpoint file (or prior.vposer.train folder) lives."""
    if checkpoint.is_dir():
        checkpoint = checkpoint / RUN_WEIGHTS
    return checkpoint.with_name(f"{checkpoint.stem}{SUFFIX}.npz")


def poses_needed(latent_dim: int, components: int = COMPONENTS) -> int:
    """Fewest poses for a fit: one more than the latent dimension per full-covariance component."""
    return components * (latent_dim + 1)


@torch.no_grad()
def fit_latent_mixture(
    model: VPoser, poses: torch.Tensor, components: int = COMPONENTS, seed: int = 0, batch: int = 8192
) -> GaussianMixture:
    """A full-covariance mixture over the encoder means of body poses (N, 21, 3), by EM
    (ValueError with fewer than `poses_needed` poses)."""
    if len(poses) < (need := poses_needed(model.latent_dim, components)):
        raise ValueError(f"{len(poses)} poses are too few for a {components}-component latent mixture (need {need})")
    model = model.eval()
    weight = model.decoder_net[0].weight
    means = torch.cat([model.encode(p.to(weight)).mean for p in poses.split(batch)])
    return fit_gmm(means.double().cpu(), components=components, seed=seed)


def load_beside(checkpoint: Path | None, latent_dim: int = 32) -> GaussianMixture | None:
    """The latent mixture saved beside a checkpoint (None: the shipped one), or None if there is none;
    ValueError naming the file if it is unreadable or not over `latent_dim` dimensions."""
    path = mixture_path(DEFAULT_CHECKPOINT if checkpoint is None else Path(checkpoint))
    if not path.is_file():
        return None
    remake = "remake it with python -m prior.vposer.latent_mixture --checkpoint CHECKPOINT, or delete it"
    mixture = GaussianMixture.load(path, fix=remake)
    if mixture.means.shape[1] != latent_dim:
        dims = mixture.means.shape[1]
        raise ValueError(f"{path}: a mixture over {dims} dimensions, not the latent's {latent_dim}; {remake}")
    return mixture


def fit_and_save(
    model: VPoser, poses: torch.Tensor, out: Path, components: int = COMPONENTS, seed: int = 0, **settings: object
) -> GaussianMixture:
    """Fit the latent mixture and write it to `out` (.npz) with its settings (.yaml), atomically."""
    mixture = fit_latent_mixture(model, poses, components, seed)
    mixture.save(out)
    run = {"components": components, "seed": seed, "poses": len(poses), **settings}
    write_text(out.with_suffix(".yaml"), OmegaConf.to_yaml(OmegaConf.create(run)))
    return mixture


def main(argv: Sequence[str] | None = None) -> None:

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="VPoser weights (default: the shipped one)")
    parser.add_argument("--components", type=int, default=COMPONENTS, help="mixture components")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="training config overrides (its data.* keys choose the poses)")
    args = parser.parse_args(argv)
    if args.components < 1:
        parser.error("--components must be at least 1")
    checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
    out = mixture_path(checkpoint)
    try:
        data = checkpoint_config(args.checkpoint, args.overrides).data
        model = load(args.checkpoint)
        train, _, info = load_splits(data, seed=args.seed)
        fit_and_save(model, train, out, args.components, args.seed, checkpoint=checkpoint.name, dataset=info["dataset"])
    except (OSError, ValueError) as e:
        parser.error(str(e))
    print(f"latent mixture of {len(train)} training poses: {out}")


if __name__ == "__main__":
    main()
