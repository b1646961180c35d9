"""prior.load: plain weights, official VPoser v2 Lightning .ckpt files and experiment folders, strictly."""

from __future__ import annotations

import os

import pytest
import torch

import prior
from prior.vposer.checkpoint import CheckpointKeyError, save_weights
from prior.vposer.model import VPoser


@pytest.fixture(scope="module")
def trained_like() -> VPoser:
    """A model with non-default weights and BatchNorm statistics."""
    torch.manual_seed(1)
    model = VPoser()
    model.train()(0.4 * torch.randn(64, 21, 3))  # moves BatchNorm running stats
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


def official_ckpt(model: VPoser) -> dict:
    """A checkpoint laid out like the published V02_05 .ckpt (Lightning, `vp_model.` prefix)."""
    state = {f"vp_model.{k}": v for k, v in model.state_dict().items()}
    state["bm_train.init_pose_body"] = torch.zeros(1, 63)  # the official trainer's body-model buffer
    return {
        "epoch": 8,
        "global_step": 1000,
        "pytorch-lightning_version": "1.2.0",
        "state_dict": state,
        "optimizer_states": [],
        "lr_schedulers": [],
    }


def assert_same(a: VPoser, b: VPoser) -> None:
    pose = 0.3 * torch.randn(8, 21, 3, generator=torch.Generator().manual_seed(0))
    assert not b.training
    torch.testing.assert_close(a.encode(pose).mean, b.encode(pose).mean)
    torch.testing.assert_close(a.encode(pose).stddev, b.encode(pose).stddev)
    z = torch.randn(8, 32, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a.decode(z), b.decode(z))


def test_plain_weights_round_trip(tmp_path, trained_like):
    save_weights(trained_like, tmp_path / "w.pt")
    assert_same(trained_like, prior.load(tmp_path / "w.pt"))


def test_official_v2_ckpt_file_and_experiment_folder(tmp_path, trained_like):
    torch.save(official_ckpt(trained_like), tmp_path / "V02_05_epoch=08_val_loss=0.03.ckpt")
    assert_same(trained_like, prior.load(tmp_path / "V02_05_epoch=08_val_loss=0.03.ckpt"))

    expr = tmp_path / "V02_05"
    (expr / "snapshots").mkdir(parents=True)
    (expr / "V02_05.yaml").write_text("model_params:\n  num_neurons: 512\n  latentD: 32\n")
    torch.save(official_ckpt(trained_like), expr / "snapshots" / "V02_05_epoch=08_val_loss=0.03.ckpt")
    worse = official_ckpt(VPoser())
    torch.save(worse, expr / "snapshots" / "V02_05_epoch=09_val_loss=0.05.ckpt")  # newer, not best
    assert_same(trained_like, prior.load(expr))

    unnamed = tmp_path / "unnamed"
    (unnamed / "snapshots").mkdir(parents=True)
    torch.save(worse, unnamed / "snapshots" / "a.ckpt")
    torch.save(official_ckpt(trained_like), unnamed / "snapshots" / "b.ckpt")
    os.utime(unnamed / "snapshots" / "a.ckpt", (1, 1))  # without scores the newest wins
    assert_same(trained_like, prior.load(unnamed))


def test_missing_and_unexpected_keys_are_named(tmp_path, trained_like):
    ckpt = official_ckpt(trained_like)
    del ckpt["state_dict"]["vp_model.encoder_net.8.logvar.bias"]
    ckpt["state_dict"]["vp_model.encoder_net.9.weight"] = torch.zeros(3)
    torch.save(ckpt, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointKeyError) as err:
        prior.load(tmp_path / "bad.ckpt")
    assert "encoder_net.8.logvar.bias" in str(err.value) and "encoder_net.9.weight" in str(err.value)
    assert err.value.missing == ["encoder_net.8.logvar.bias"] and err.value.unexpected == ["encoder_net.9.weight"]

    state = trained_like.state_dict()
    state["extra.bias"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(ValueError, match="^[^'\"].*unexpected keys: extra.bias$"):  # also a ValueError, unquoted
        prior.load(tmp_path / "extra.pt")


@pytest.mark.parametrize("content", [b"not a checkpoint\n", b"", b"PK\x03\x04garbage", bytes(range(256))])
def test_garbage_file_is_a_value_error(tmp_path, content):
    (tmp_path / "garbage.ckpt").write_bytes(content)
    with pytest.raises(ValueError, match="(?s)garbage.ckpt: not a VPoser checkpoint .*official VPoser v2"):
        prior.load(tmp_path / "garbage.ckpt")


def test_refuses_pickled_code_and_missing_paths(tmp_path):
    torch.save({"state_dict": {"x": torch.zeros(1)}, "hook": print}, tmp_path / "code.ckpt")
    with pytest.raises(ValueError, match="[Ww]eights only"):
        prior.load(tmp_path / "code.ckpt")
    with pytest.raises(FileNotFoundError):
        prior.load(tmp_path / "absent.ckpt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="snapshots"):
        prior.load(tmp_path / "empty")
