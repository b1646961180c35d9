"""The GMM pose prior (SMPLify's baseline): EM, penalty, least-squares form, sampling, files, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from prior.vposer.gmm import GaussianMixture, fit_gmm, main


@pytest.fixture(scope="module")
def two_clusters() -> np.ndarray:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.1, (400, 3)) + [1, 0, 0]
    b = rng.normal(0, 0.2, (200, 3)) - [1, 0, 0]
    return np.concatenate([a, b])


def test_gmm_em_recovers_two_clusters_and_penalty_is_nonnegative(two_clusters, tmp_path):
    gmm = fit_gmm(two_clusters, components=2, seed=0)
    order = torch.argsort(gmm.means[:, 0])
    assert torch.allclose(gmm.means[order, 0], torch.tensor([-1.0, 1.0], dtype=torch.float64), atol=0.05)
    assert torch.allclose(gmm.weights[order], torch.tensor([1 / 3, 2 / 3], dtype=torch.float64), atol=0.02)
    gmm.save(tmp_path / "gmm.npz")
    loaded = GaussianMixture.load(tmp_path / "gmm.npz").to("cpu")
    pen = loaded.penalty(torch.tensor([[1.0, 0, 0], [-1.0, 0, 0], [5.0, 5.0, 5.0]]))
    assert (pen >= -1e-5).all() and pen[2] > 100 * pen[:2].max()


def test_gmm_penalty_equals_its_least_squares_form(two_clusters):
    gmm = fit_gmm(two_clusters, components=2, seed=0)
    x = torch.tensor([[1.0, 0.1, 0.0], [-0.8, 0.0, 0.3], [0.0, 0.0, 0.0]], dtype=torch.float64)
    white, const, jac = gmm.whitened(x)
    torch.testing.assert_close(0.5 * white.square().sum(-1) + const, gmm.penalty(x))
    torch.testing.assert_close(jac, torch.func.vmap(torch.func.jacrev(lambda y: gmm.whitened(y[None])[0][0]))(x))


def test_gmm_samples_follow_the_weights_and_means(two_clusters):
    gmm = fit_gmm(two_clusters, components=2, seed=0)
    samples = gmm.sample(4000, seed=1)
    assert samples.shape == (4000, 3) and torch.equal(samples, gmm.sample(4000, seed=1))
    left = samples[:, 0] < 0
    assert left.double().mean().item() == pytest.approx(1 / 3, abs=0.03)
    assert samples[left, 0].mean().item() == pytest.approx(-1.0, abs=0.03)
    assert samples[~left, 0].std().item() == pytest.approx(0.1, abs=0.02)


def test_gmm_load_names_the_file_and_the_fix(tmp_path):
    bad = tmp_path / "gmm.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    for path in (bad, tmp_path / "missing.npz"):
        with pytest.raises(ValueError, match=f"{path.name}.*python -m prior.vposer.gmm"):
            GaussianMixture.load(path)


def test_gmm_cli_fits_and_saves_the_mixture_with_its_settings(tmp_path):
    poses = np.random.default_rng(0).normal(0, 0.3, (300, 21, 3)).astype(np.float32)
    np.savez(tmp_path / "poses.npz", body_pose=poses)
    main([str(tmp_path / "poses.npz"), "--out", str(tmp_path / "gmm.npz"), "--components", "2", "--max-poses", "200"])
    gmm = GaussianMixture.load(tmp_path / "gmm.npz")
    assert gmm.means.shape == (2, 63) and gmm.covariances.shape == (2, 63, 63)
    assert OmegaConf.load(tmp_path / "gmm.yaml").components == 2
