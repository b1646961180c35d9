"""VPoser's latent mixture (prior.vposer.latent_mixture): its pose space, the shipped one, the command."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import prior
from prior.data.fk import rest_joints, smplx_forward_kinematics
from prior.evaluation.evaluate import pose_cost, separation
from prior.evaluation.limits import within_limits
from prior.evaluation.tasks import denoise
from prior.pose_spaces import LatentMixtureSpace, PoseSpace, VPoserSpace
from prior.vposer.checkpoint import DEFAULT_CHECKPOINT
from prior.vposer.gmm import GaussianMixture
from prior.vposer.latent_mixture import fit_latent_mixture, load_beside, main, mixture_path
from tests.prior_data_mocap import held_out_poses

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    return prior.load()


@pytest.fixture(scope="module")
def shipped() -> GaussianMixture:
    mixture = load_beside(None)
    assert mixture is not None, f"no latent mixture beside {DEFAULT_CHECKPOINT}"
    return mixture


@pytest.fixture(scope="module")
def held_out() -> torch.Tensor:
    """The bundled clips of FAIR's fair1, a validation actor of the shipped prior, 5 fps."""
    return held_out_poses(fps=5.0)


def test_one_standard_normal_component_is_vposers_own_prior(model):
    """With the mixture N(0, I) the space's penalty and least-squares residual are VPoser's 0.5 |z|^2 and z;
    with N(m, 2 I) they are 0.25 |z - m|^2 and (z - m) / sqrt(2), and the MAP starts at m."""
    d = model.latent_dim
    standard = GaussianMixture(torch.ones(1), torch.zeros(1, d), torch.eye(d)[None])
    z = torch.randn(5, d, generator=torch.Generator().manual_seed(0))
    mixed, plain = LatentMixtureSpace(model, standard), VPoserSpace(model)
    torch.testing.assert_close(mixed.penalty(z), plain.penalty(z))
    torch.testing.assert_close(mixed.prior_residual(z)[0], plain.prior_residual(z)[0])
    torch.testing.assert_close(mixed.rotmat(z), plain.rotmat(z))
    m = torch.linspace(-1, 1, d)
    wide = LatentMixtureSpace(model, GaussianMixture(torch.ones(1), m[None].double(), 2 * torch.eye(d)[None].double()))
    wide = wide.to("cpu", torch.float32)
    torch.testing.assert_close(wide.penalty(z), 0.25 * (z - m).square().sum(-1))
    torch.testing.assert_close(wide.prior_residual(z)[0], (z - m) / 2**0.5)
    torch.testing.assert_close(wide.initial(2, "cpu", torch.float32), m.expand(2, -1))


def test_a_bad_mixture_file_is_named_with_the_fix(tmp_path, model):
    weights = tmp_path / "mine.pt"
    weights.write_bytes(b"")
    assert load_beside(weights) is None  # none beside it: plain VPoser
    mixture_path(weights).write_bytes(b"not a mixture")
    with pytest.raises(ValueError, match=r"mine_latent_gmm\.npz.*python -m prior\.vposer\.latent_mixture"):
        load_beside(weights)
    GaussianMixture(torch.ones(1), torch.zeros(1, 63), torch.eye(63)[None]).save(mixture_path(weights))
    with pytest.raises(ValueError, match="63 dimensions, not the latent's 32"):
        load_beside(weights)
    with pytest.raises(ValueError, match="too few"):
        fit_latent_mixture(model, torch.zeros(100, 21, 3))


def test_fitted_mixture_sits_on_the_codes_of_its_poses(model, held_out):
    """Fitted to real poses' codes, the mixture prefers them to codes drawn from N(0, I)."""
    mixture = fit_latent_mixture(model, held_out, components=2, seed=0)
    assert mixture.means.shape == (2, model.latent_dim) and torch.isclose(
        mixture.weights.sum(), torch.tensor(1.0).double()
    )
    with torch.no_grad():
        codes = model.encode(held_out).mean.double()
    noise = torch.randn(codes.shape, generator=torch.Generator().manual_seed(1), dtype=codes.dtype)
    assert mixture.penalty(codes).mean() + 5 < mixture.penalty(noise).mean()


def test_shipped_mixture_samples_denoising_and_separation(model, shipped, held_out, anny_body):
    """The shipped mixture: 8 components; decoded samples within joint limits; real poses beat
    their backward-bent selves; denoising held-out joints (40 mm noise) beats no prior."""
    assert shipped.means.shape == (8, model.latent_dim)
    with torch.no_grad():
        samples = model.decode(shipped.sample(500, seed=0).float())
    assert within_limits(samples).float().mean() >= 0.97
    assert separation(lambda p: pose_cost(model, p, "elbo", shipped), held_out, seed=0) >= 95.0
    rest = rest_joints(anny_body)
    clean = smplx_forward_kinematics(held_out[:24], rest)
    (with_mixture,) = denoise(LatentMixtureSpace(model, shipped), clean, rest, [0.04], seed=0)
    (no_prior,) = denoise(PoseSpace(), clean, rest, [0.04], seed=0)
    assert with_mixture.mean() < 0.9 * no_prior.mean()


def test_command_writes_the_mixture_and_its_settings_beside_the_checkpoint(tmp_path, held_out):
    weights = tmp_path / "mine.pt"
    shutil.copyfile(DEFAULT_CHECKPOINT, weights)
    shutil.copyfile(DEFAULT_CHECKPOINT.with_suffix(".yaml"), weights.with_suffix(".yaml"))
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "val"):
        np.savez(data / f"{split}.npz", body_pose=held_out.numpy(), root_orient=np.zeros((len(held_out), 3)))
    main(["--checkpoint", str(weights), "--components", "2", f"data.dataset={data}"])
    out = mixture_path(weights)
    assert out.name == "mine_latent_gmm.npz" and load_beside(weights).means.shape == (2, 32)
    settings = OmegaConf.load(out.with_suffix(".yaml"))
    assert settings.components == 2 and settings.poses == len(held_out) and settings.checkpoint == weights.name
