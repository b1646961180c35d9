"""Training on a few hundred real mocap poses: the loss falls, checkpoints load, training resumes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import prior
from prior.data.build import build_dataset
from prior.data.splits import dataset_folder, load_splits
from prior.vposer.checkpoint import DEFAULT_CHECKPOINT
from prior.vposer.latent_mixture import load_beside
from prior.vposer.train import load_config, main, train
from tests.prior_data_mocap import HELD_OUT_ACTOR, training_mocap


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """The bundled SNU martial-arts actors (training, mirrored) and one clip of FAIR's fair1 (validation), 15 fps."""
    root = tmp_path_factory.mktemp("mocap")
    training_mocap(root / "mocap")
    manifest = build_dataset(root / "mocap", root / "dataset", fps=15.0, val_subjects=[HELD_OUT_ACTOR], progress=False)
    assert manifest["split"]["val_subjects"] == [HELD_OUT_ACTOR]
    return root / "dataset", manifest


def epoch_metrics(out_dir) -> dict[int, dict[str, float]]:
    """Per-epoch logged metrics of all runs (one CSV per run) in a training folder."""
    merged: dict[int, dict[str, float]] = {}
    for path in sorted((out_dir / "logs").glob("version_*/metrics.csv")):
        for row in csv.DictReader(open(path)):
            merged.setdefault(int(row["epoch"]), {}).update({k: float(v) for k, v in row.items() if v and k != "epoch"})
    return merged


def test_training_reduces_loss_saves_and_resumes(small_dataset, tmp_path):
    dataset, manifest = small_dataset
    assert 200 <= manifest["counts"]["train"]["frames"] <= 1500
    overrides = [
        f"data.dataset={dataset}",
        f"out_dir={tmp_path / 'run'}",
        "train.batch_size=64",
        "train.max_epochs=4",
        "loss.vertex_every=4",
        "loss.vertex_batch=8",
        "train.progress_refresh=1000",
    ]
    export = tmp_path / "shipped" / "mine.pt"
    weights = train(load_config(overrides=[*overrides, f"export={export}"]))
    # the run's latent mixture (prior.vposer.latent_mixture) is exported beside the weights, config and metrics
    exported = ["mine.pt", "mine.yaml", "mine_train_metrics.json", "mine_latent_gmm.npz", "mine_latent_gmm.yaml"]
    assert sorted(p.name for p in export.parent.iterdir()) == sorted(exported)
    run_mixture = load_beside(tmp_path / "run")
    assert run_mixture.means.shape == (8, 32) and torch.equal(load_beside(export).means, run_mixture.means)
    assert OmegaConf.load(export.with_name("mine_latent_gmm.yaml")).poses == manifest["counts"]["train"]["frames"]

    metrics = epoch_metrics(tmp_path / "run")
    assert sorted(metrics) == [0, 1, 2, 3]
    assert metrics[3]["train_loss_epoch"] < 0.8 * metrics[0]["train_loss_epoch"]
    assert metrics[3]["val_loss"] < metrics[0]["val_loss"]
    snaps = sorted(p.name for p in (tmp_path / "run" / "snapshots").glob("*.ckpt"))
    assert "last.ckpt" in snaps and any(s.startswith("best-epoch=") for s in snaps)
    assert (tmp_path / "run" / "config.yaml").is_file()

    model = prior.load(weights)
    assert not model.training and model.sample(4, seed=0).shape == (4, 21, 3)
    folder_model = prior.load(tmp_path / "run")  # experiment folder: the best snapshot
    z = torch.zeros(2, 32)
    torch.testing.assert_close(folder_model.decode(z), model.decode(z))

    resumed = overrides[:-4] + ["train.max_epochs=5", "loss.vertex_every=0", "train.progress_refresh=1000"]
    train(load_config(overrides=resumed))
    assert sorted(epoch_metrics(tmp_path / "run")) == [0, 1, 2, 3, 4]  # continued, not restarted

    # A new run initialised from the (resumed) run's weights: with a vanishing learning rate it keeps them.
    tuned = overrides[:1] + [
        f"out_dir={tmp_path / 'tuned'}",
        f"init_from={weights}",
        "train.lr=1e-12",
        "train.max_epochs=1",
        "loss.vertex_every=0",
        "train.progress_refresh=1000",
    ]
    tuned_model = prior.load(train(load_config(overrides=tuned)))
    torch.testing.assert_close(tuned_model.decode(z), prior.load(weights).decode(z))


def test_config_overrides_are_checked():
    cfg = load_config(overrides=["data.fps=10", "train.max_epochs=3"])
    assert cfg.data.fps == 10 and cfg.train.max_epochs == 3 and cfg.train.batch_size == 128
    with pytest.raises(ValueError, match="train.nonexistent"):
        load_config(overrides=["train.nonexistent=1"])
    with pytest.raises(SystemExit):
        main(["train.nonexistent=1"])


def test_config_file_is_layered_on_the_defaults(tmp_path):
    (tmp_path / "mine.yaml").write_text("name: mine\ntrain:\n  max_epochs: 2\n")
    cfg = load_config(tmp_path / "mine.yaml", ["train.lr=0.01"])
    assert cfg.train.max_epochs == 2 and cfg.train.lr == 0.01 and cfg.train.batch_size == 128
    assert cfg.out_dir == "out/prior/mine"
    (tmp_path / "unknown.yaml").write_text("train:\n  epochs: 2\n")
    with pytest.raises(ValueError, match="unknown.yaml: unknown config key 'train.epochs'"):
        load_config(tmp_path / "unknown.yaml")
    (tmp_path / "bad.yaml").write_text("train: [1\n")
    with pytest.raises(ValueError, match="bad.yaml: not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_empty_split_names_the_fix(tmp_path):
    poses = np.zeros((4, 21, 3), np.float32)
    np.savez(tmp_path / "train.npz", body_pose=poses)
    np.savez(tmp_path / "val.npz", body_pose=poses[:0])
    data = load_config(overrides=[f"data.dataset={tmp_path}"]).data
    with pytest.raises(ValueError, match="validation split is empty; set data.val_subjects"):
        load_splits(data)


def test_dataset_cache_key_follows_the_mocap_files_not_where_they_live(tmp_path):
    import os
    import shutil

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("no motion files")
    data = load_config(overrides=[f"data.mocap={tmp_path / 'a'}", f"data.cache_dir={tmp_path / 'cache'}"]).data
    first = dataset_folder(data)
    assert dataset_folder(data) == first  # cached
    shutil.copytree(tmp_path / "a", tmp_path / "copy")  # the same files elsewhere, with new times
    os.utime(tmp_path / "copy" / "notes.txt", ns=(0, 0))
    data.mocap = str(tmp_path / "copy")
    assert dataset_folder(data) == first
    (tmp_path / "copy" / "notes.txt").write_text("changed input files")
    assert dataset_folder(data) != first
    with pytest.raises(ValueError, match="training split is empty"):
        load_splits(data)


def test_evaluate_json_writes_its_config_beside(small_dataset, tmp_path):
    from prior.evaluation.evaluate import main as evaluate

    dataset, _ = small_dataset
    quick = ["--samples", "8", "--max-poses", "8", "--task-poses", "2", "--hypotheses", "2", "--iterations", "3"]
    evaluate([*quick, "--gmm-poses", "300", "--json", str(tmp_path / "rows.json"), f"data.dataset={dataset}"])
    rows = {row["name"]: row for row in json.loads((tmp_path / "rows.json").read_text())}
    assert len(rows) == 7  # VPoser, with its latent mixture, GMM, PCA, no prior, the real poses, the noisy inputs
    vposer = rows[f"VPoser {DEFAULT_CHECKPOINT.name}"]
    mixed = rows[f"VPoser {DEFAULT_CHECKPOINT.name} + latent GMM (8 components)"]
    assert all(v is not None for row in (vposer, mixed) for v in row.values())  # every metric applies to a VPoser
    assert mixed["rec_mpjpe_mm"] == vposer["rec_mpjpe_mm"]  # the same encoder and decoder
    assert mixed["denoise_40_mm"] != vposer["denoise_40_mm"]  # another latent prior
    gmm = next(row for name, row in rows.items() if name.startswith("GMM"))
    assert gmm["rec_mpjpe_mm"] is None and gmm["denoise_40_mm"] is not None  # no encoder
    run = OmegaConf.load(tmp_path / "rows.yaml")
    assert run.checkpoint == str(DEFAULT_CHECKPOINT) and run.samples == 8 and run.data.dataset == str(dataset)
