"""The temporal lifter: its layout (the untrained one is the initialiser; causal mode ignores the
future), `lift` on any length, strict checkpoints, training and resuming, and the shipped one
against the single-frame initialiser on held-out synthetic videos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from body.keypoint_sets import keypoint_names
from prior import CheckpointKeyError
from prior.data.fk import RestSkeleton, rest_joints
from prior.data.sequences import Sequences, build_sequences
from prior.initialiser.model import NUM_FEATURES, Initialiser
from prior.initialiser.model import save as save_initialiser
from prior.initialiser.temporal_data import SequenceBodies, draw_windows
from prior.initialiser.temporal_lifter import DEFAULT_CHECKPOINT, TemporalLifter, lift, load, save
from prior.initialiser.temporal_train import evaluate, load_config, train
from tests.prior_data_mocap import HELD_OUT_ACTOR, bundled_mocap


def _tiny(causal: bool = False, seed: int = 0) -> TemporalLifter:
    torch.manual_seed(seed)
    return TemporalLifter(Initialiser(width=32, blocks=1), width=16, causal=causal).eval()


@pytest.fixture(scope="module")
def sequences(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sequences of the bundled mocap: the held-out FAIR actor in val.npz, the SNU actors in train.npz."""
    out = tmp_path_factory.mktemp("sequences")
    build_sequences(bundled_mocap(), out, progress=False)
    return out


def test_untrained_lifter_is_the_initialiser_and_causal_mode_ignores_the_future(one_thread):
    model = _tiny()
    feats = torch.randn(2, 90, NUM_FEATURES)
    out = model(feats)
    assert out.rotations.shape == (2, 10, 22, 3, 3) and out.shape.shape == (2, 10, 6)
    with torch.no_grad():
        rot, shape, _ = model.initialiser(feats[:, 40:50].flatten(0, 1))
    assert torch.allclose(out.rotations, rot[:, 0].unflatten(0, (2, 10)), atol=1e-5)
    assert torch.allclose(out.shape, shape.unflatten(0, (2, 10)), atol=1e-5)

    causal = _tiny(causal=True)
    torch.nn.init.normal_(causal.out.weight, std=0.1)
    changed = feats.clone()
    changed[:, 85:] += 1.0  # the future of output frames 0..4 (input frames 80..84)
    a, b = causal(feats).rotations, causal(changed).rotations
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6) and not torch.allclose(a[:, 5:], b[:, 5:])
    with pytest.raises(ValueError, match="at least 81 frames"):
        causal(feats[:, :80])


@pytest.mark.parametrize("frames", [1, 7, 120])
def test_lift_any_length_pads_the_ends(one_thread, frames):
    model = _tiny()
    torch.nn.init.normal_(model.out.weight, std=0.01)
    k = len(keypoint_names("coco17"))
    gen = torch.Generator().manual_seed(frames)
    points = 300 + 400 * torch.rand(frames, k, 2, generator=gen)
    conf = torch.rand(frames, k, generator=gen)
    conf[frames // 2] = 0  # nobody found in one frame: its depth and position are interpolated
    got = lift(model, points, conf, "coco17", focal=1000.0, center=(640.0, 360.0))
    assert got.global_orient.shape == (frames, 3) and got.body_pose.shape == (frames, 21, 3)
    assert got.shape.shape == (6,) and got.depth.shape == (frames,) and got.root_px.shape == (frames, 2)
    assert float(got.depth_ratio[0]) == pytest.approx(1.0)
    assert all(torch.isfinite(x).all() for x in (got.depth, got.root_px, got.body_pose))
    with pytest.raises(ValueError, match="coco17 has 17 points"):
        lift(model, points[:, :5], conf[:, :5], "coco17", 1000.0, (640.0, 360.0))


def test_checkpoint_round_trip_strict_keys_and_refused_files(tmp_path):
    model = _tiny(causal=True)
    torch.nn.init.normal_(model.out.weight, std=0.1)
    save(model, tmp_path / "lifter.pt")
    back = load(tmp_path / "lifter.pt")
    assert back.causal and back.dilations == model.dilations and back.width == 16
    feats = torch.randn(1, 85, NUM_FEATURES)
    assert torch.allclose(back(feats).rotations, model(feats).rotations, atol=2e-2)

    raw = torch.load(tmp_path / "lifter.pt", weights_only=True)
    raw["state_dict"]["blocks.9.weight"] = torch.zeros(1)
    del raw["state_dict"]["out.bias"]
    torch.save(raw, tmp_path / "keys.pt")
    with pytest.raises(CheckpointKeyError, match=r"missing keys: out\.bias; unexpected keys: blocks\.9\.weight"):
        load(tmp_path / "keys.pt")
    torch.save(
        {"format": "bodyfit-temporal-lifter-1", "layout": {}, "state_dict": {}, "code": Path("x")}, tmp_path / "p.pt"
    )
    with pytest.raises(ValueError, match="not a temporal lifter checkpoint"):
        load(tmp_path / "p.pt")  # a pickled object (not a tensor or plain value): refused by weights_only
    torch.save({"format": "something else", "state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="expected format"):
        load(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="prior.initialiser.temporal_train"):
        load(tmp_path / "none.pt")


def test_training_saves_resumes_and_exports(tmp_path, sequences, one_thread):
    torch.manual_seed(0)
    save_initialiser(Initialiser(width=32, blocks=1), tmp_path / "ini.pt")
    args = [
        f"out_dir={tmp_path / 'run'}", f"initialiser={tmp_path / 'ini.pt'}", f"data.sequences={sequences}",
        "data.max_train_frames=500", "data.val_windows=2", "model.width=8", "train.batch_size=2",
        "train.frames=83", "train.val_every=1",
    ]  # fmt: skip
    train(load_config(overrides=[*args, "train.steps=2"]))
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    assert [row["step"] for row in history] == [1, 2]
    export = tmp_path / "shipped" / "lifter.pt"
    weights = train(load_config(overrides=[*args, "train.steps=3", f"export={export}"]))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [row["step"] for row in metrics["history"]] == [1, 2, 3] and metrics["finished"]
    assert {"lifter", "initialiser"} <= set(metrics["val"]) and metrics["receptive_field"] == 81
    assert load(weights).width == 8 and load(export).width == 8
    assert (export.with_suffix(".yaml")).is_file() and (tmp_path / "shipped" / "lifter_metrics.json").is_file()
    with pytest.raises(ValueError, match="under 3 output frames"):
        train(load_config(overrides=[*args, "train.frames=82", f"out_dir={tmp_path / 'short'}"]))


def test_shipped_lifter_beats_the_initialiser_on_held_out_videos(anny_body, sequences, one_thread):
    """Real mocap of a held-out actor (FAIR's fair1), 30 fps windows with the training noise: the lifter is
    more accurate than the initialiser frame by frame (most in MPJPE: depth and orientation), and far smoother."""
    assert DEFAULT_CHECKPOINT.stat().st_size < 30e6
    model = load()
    val = Sequences.read(sequences / "val.npz")
    assert set(val.actors[val.actor]) == {HELD_OUT_ACTOR}
    bodies = SequenceBodies.build(anny_body, val, np.random.default_rng(0))
    cfg = load_config(overrides=["views.fps=[30.0,30.0]", "views.ends=0.0"])
    windows = draw_windows(bodies, 12, 161, torch.Generator().manual_seed(0), cfg.views)
    skeleton = RestSkeleton(rest_joints(anny_body), pelvis_at_origin=True)
    got = evaluate(model, windows, skeleton)
    lifter, single = got["lifter"], got["initialiser"]
    print(json.dumps(got))
    assert got["frames"] > 700  # measured: PA-MPJPE 68.9 vs 72.0, MPJPE 81.6 vs 89.2, accel 22.4 vs 117.3
    assert lifter["pa_mpjpe_mm"] < 0.98 * single["pa_mpjpe_mm"] and lifter["mpjpe_mm"] < 0.95 * single["mpjpe_mm"]
    assert lifter["accel_mm_per_frame2"] < 0.3 * single["accel_mm_per_frame2"]
    # video.lift_smoothing's default: a one-frame Gaussian over the readings takes most of the jitter
    # out and costs no accuracy (measured: accel 22.4 -> 9.4, PA-MPJPE 68.9 -> 68.8)
    smoothed = evaluate(model, windows, skeleton, smoothing=1.0)["lifter"]
    print(json.dumps(smoothed))
    assert smoothed["accel_mm_per_frame2"] < 0.6 * lifter["accel_mm_per_frame2"]
    assert smoothed["pa_mpjpe_mm"] < 1.01 * lifter["pa_mpjpe_mm"]
