"""The shipped default checkpoint on held-out real mocap: separation, reconstruction, samples."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

import prior
from body.rotations import axis_angle_to_matrix, geodesic_angle
from prior.data.fk import rest_joints, smplx_forward_kinematics
from prior.evaluation.evaluate import pose_cost, separation
from prior.evaluation.limits import within_limits
from prior.vposer.checkpoint import DEFAULT_CHECKPOINT
from tests.prior_data_mocap import HELD_OUT_ACTOR, held_out_poses


@pytest.fixture(scope="module")
def model():
    return prior.load()


@pytest.fixture(scope="module")
def held_out() -> torch.Tensor:
    """The bundled clips of the held-out actor (FAIR's fair1), 10 fps (about 500 poses)."""
    metrics = json.loads(DEFAULT_CHECKPOINT.with_name("vposer_default_train_metrics.json").read_text())
    assert HELD_OUT_ACTOR in metrics["val_subjects"]
    return held_out_poses(fps=10.0)


def test_default_checkpoint_loads_small_in_eval_mode(model):
    assert not model.training and model.latent_dim == 32
    assert DEFAULT_CHECKPOINT.stat().st_size < 5_000_000
    assert DEFAULT_CHECKPOINT.with_suffix(".yaml").is_file()


def test_real_poses_cost_less_than_backward_bent_hinges(model, held_out):
    """>= 95 % of held-out poses beat themselves with a knee or elbow bent backwards by 60 deg."""
    assert len(held_out) > 300
    assert separation(lambda p: pose_cost(model, p, "elbo"), held_out, seed=0) >= 95.0
    assert separation(lambda p: pose_cost(model, p, "mu"), held_out, seed=0) >= 95.0


def test_reconstructs_held_out_poses(model, held_out, anny_body):
    """decode(encode(x).mean): mean joint rotation error < 12 deg, MPJPE (22 joints) < 65 mm
    (measured: 9.4 deg, 52 mm on these ~400 poses)."""
    with torch.no_grad():
        rec = model.decode(model.encode(held_out).mean)
    angle = torch.rad2deg(geodesic_angle(axis_angle_to_matrix(rec), axis_angle_to_matrix(held_out))).mean()
    rest = rest_joints(anny_body)
    mpjpe = 1000 * (smplx_forward_kinematics(rec, rest) - smplx_forward_kinematics(held_out, rest)).norm(dim=-1).mean()
    assert angle < 12.0, f"mean geodesic error {angle:.1f} deg"
    assert mpjpe < 65.0, f"MPJPE {mpjpe:.1f} mm"


def test_samples_are_finite_and_mostly_within_joint_limits(model):
    poses = model.sample(1000, seed=0)
    assert poses.shape == (1000, 21, 3) and torch.isfinite(poses).all()
    assert within_limits(poses).float().mean() >= 0.9


def test_sample_cli_writes_grid_gif_and_poses(tmp_path):
    import imageio.v3 as iio
    import numpy as np

    from prior.vposer.sample import main

    main(["--out", str(tmp_path), "--n", "3", "--columns", "2", "--pairs", "2", "--frames", "2", "--cell", "64"])
    assert iio.imread(tmp_path / "samples.png").shape[:2] == (128, 128)  # 2 rows x 2 columns, one blank
    gif = iio.imread(tmp_path / "interpolation.gif", index=None)
    assert gif.shape[:3] == (2, 64, 128)  # 2 frames, 2 interpolations side by side
    assert np.load(tmp_path / "samples.npz")["body_pose"].shape == (3, 21, 3)
    run = OmegaConf.load(tmp_path / "config.yaml")
    assert run.n == 3 and run.checkpoint == str(DEFAULT_CHECKPOINT)
