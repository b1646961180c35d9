"""The learned initialiser: inputs, the depth twin, checkpoints, training, and the shipped one on held-out views."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from body.rotations import axis_angle_to_matrix, geodesic_angle
from fitting.hypotheses import depth_twin
from fitting.synthetic import render_views
from prior import CheckpointKeyError
from prior.initialiser.model import (
    DEFAULT_CHECKPOINT,
    INPUT_POINTS,
    Initialiser,
    deepen,
    features,
    gather_points,
    load,
    save,
    widen,
)
from tests.pose_samples import held_out_body_poses


def test_features_centre_and_scale_the_box_and_zero_missing_points():
    xy = torch.zeros(1, len(INPUT_POINTS), 2)
    conf = torch.zeros(1, len(INPUT_POINTS))
    xy[0, 0], xy[0, 1], xy[0, 2] = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0]), torch.tensor([2.0, 3.0])
    xy[0, 3] = torch.tensor([50.0, 50.0])  # missing: must not count
    conf[0, :3] = torch.tensor([1.0, 0.5, 0.8])
    f = features(xy, conf)
    pts = f[0, : 3 * len(INPUT_POINTS)].reshape(-1, 3)
    # box x 1..3, y 2..3: centre (2, 2.5), longer side 2
    assert torch.allclose(pts[0], torch.tensor([-0.5, -0.25, 1.0]))
    assert torch.allclose(pts[1], torch.tensor([0.5, -0.25, 0.5]))
    assert torch.allclose(pts[2], torch.tensor([0.0, 0.25, 0.8]))
    assert torch.equal(pts[3:], torch.zeros_like(pts[3:]))
    assert torch.allclose(f[0, -3:], torch.tensor([2.0, 2.5, 2.0]))
    assert torch.equal(features(xy, torch.zeros_like(conf)), torch.zeros_like(f))


def test_gather_points_normalises_pixels_and_keeps_the_more_confident_duplicate():
    n = 2
    focal, center = torch.tensor([[1000.0, 500.0]] * n), torch.tensor([[500.0, 400.0]] * n)
    body25 = (torch.full((n, 25, 2), 600.0), torch.full((n, 25), 0.9))
    coco17 = (torch.full((n, 17, 2), 1500.0), torch.full((n, 17), 0.5))
    xy, conf = gather_points({"body25": body25, "coco17": coco17}, focal, center)
    nose = INPUT_POINTS.index("nose")
    assert torch.allclose(xy[:, nose], torch.tensor([0.1, 0.4])) and torch.allclose(conf[:, nose], torch.tensor(0.9))
    with pytest.raises(KeyError, match="unknown keypoint set"):
        gather_points({"no_such_set": body25}, focal, center)


def test_depth_twin_projects_to_the_same_image_points(anny_body):
    """Every joint but the feet's lands near the same (x, y) about the pelvis, its depth mirrored (Anny's rest
    skeleton puts the hips, collars and head a few cm forward of the x-y plane: that much is off)."""
    pose = held_out_body_poses(8, seed=3)
    orient = torch.tensor([[np.pi, 0.3, 0.1]]).repeat(8, 1) + torch.randn(8, 3) * 0.3
    twin_orient, twin_pose = depth_twin(orient, pose)
    with torch.no_grad():
        a = anny_body(global_orient=orient, body_pose=pose).joints[:, :22]
        b = anny_body(global_orient=twin_orient, body_pose=twin_pose).joints[:, :22]
    a, b = a - a[:, :1], b - b[:, :1]
    keep = [j for j in range(22) if j not in (10, 11)]  # the feet bones point forward in the rest pose
    off_2d, off_depth = (b[:, keep, :2] - a[:, keep, :2]).norm(dim=-1), (b[:, keep, 2] + a[:, keep, 2]).abs()
    assert off_2d.max() < 0.1 and off_2d.mean() < 0.035 and off_depth.mean() < 0.045, (off_2d, off_depth)
    assert (a[:, keep, 2].abs() > 0.05).any()  # the test has depth to mirror


@pytest.mark.parametrize("hypotheses", [1, 3])
def test_checkpoint_round_trip_strict_keys_and_refused_files(tmp_path, hypotheses):
    model = Initialiser(width=32, blocks=1, hypotheses=hypotheses).eval()
    save(model, tmp_path / "init.pt")
    again = load(tmp_path / "init.pt")
    assert all(p.dtype == torch.float32 for p in again.parameters())
    # the weights are stored in float16: the round trip is exact on those
    model.load_state_dict({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()})
    x = torch.randn(4, model.inp[0].in_features)
    assert all(torch.equal(a, b) for a, b in zip(again(x), model(x)))
    assert again.width == 32 and again.hypotheses == hypotheses
    raw = torch.load(tmp_path / "init.pt", weights_only=True)
    del raw["state_dict"]["out.bias"]
    raw["state_dict"]["extra.weight"] = torch.zeros(1)
    torch.save(raw, tmp_path / "broken.pt")
    with pytest.raises(CheckpointKeyError, match="missing keys: out.bias; unexpected keys: extra.weight"):
        load(tmp_path / "broken.pt")
    torch.save({"format": "bodyfit-initialiser-1", "state_dict": {}, "hook": print}, tmp_path / "code.pt")
    with pytest.raises(ValueError, match="not an initialiser checkpoint"):
        load(tmp_path / "code.pt")
    torch.save({"w": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="expected format"):
        load(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="prior.initialiser.train"):
        load(tmp_path / "absent.pt")
    if hypotheses == 1:  # checkpoints from before there were hypotheses have none in their layout
        raw = torch.load(tmp_path / "init.pt", weights_only=True)
        del raw["layout"]["hypotheses"]
        torch.save(raw, tmp_path / "older.pt")
        assert load(tmp_path / "older.pt").hypotheses == 1


def test_predict_gives_the_regressed_answer_then_the_others_by_probability():
    torch.manual_seed(0)
    model = Initialiser(width=32, blocks=1, hypotheses=4).eval()
    with torch.no_grad():
        model.out.weight[-3:] = 0.0
        model.out.bias[-3:] = torch.tensor([0.0, 3.0, 1.0])  # the others' logits: hypothesis 2, then 3, then 1
    sets = {"body25": (torch.rand(5, 25, 2) * 800, torch.ones(5, 25))}
    focal, center = torch.full((5, 2), 1000.0), torch.full((5, 2), 400.0)
    pred = model.predict(sets, focal, center)
    assert pred.others_orient.shape == (5, 3, 3) and pred.others_pose.shape == (5, 3, 21, 3)
    assert torch.allclose(pred.probability.sum(1), torch.ones(5)) and (pred.probability.diff(dim=1) <= 0).all()
    rot = model(features(*gather_points(sets, focal, center)))[0]
    for rank, k in enumerate([0, 2, 3, 1]):
        orient = pred.global_orient if rank == 0 else pred.others_orient[:, rank - 1]
        assert torch.allclose(axis_angle_to_matrix(orient), rot[:, k, 0], atol=1e-4)


@pytest.mark.parametrize("hypotheses", [2, 3])
def test_training_loss_teaches_every_view_to_the_first_and_the_closest_other_and_its_choice(hypotheses):
    """The first hypothesis turned 45 deg, the last 10 deg, any between 45 deg: the first is taught in full,
    of the others the closest (the last) with weight 1 - others (1 when it is alone), the rest share
    `others`, and the classifier's target is the last."""
    from omegaconf import OmegaConf

    from prior.data.fk import RestSkeleton
    from prior.initialiser.data import ViewBatch
    from prior.initialiser.train import losses

    model = Initialiser(width=8, blocks=0, hypotheses=hypotheses)
    rot, _, _ = model.outputs()
    small = float(np.tan(np.radians(10)))
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.zero_()
        for rows in rot:  # 6D (1, 0, t; 0, 1, 0) + identity: a turn of atan(t) about y
            model.out.bias[rows] = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 0.0]).repeat(22)
        model.out.bias[rot[-1]] = torch.tensor([0.0, 0.0, 0.0, 0.0, small, 0.0]).repeat(22)
    n = 6
    batch = ViewBatch(
        torch.randn(n, model.inp[0].in_features),
        torch.eye(3).expand(n, 22, 3, 3),
        torch.zeros(n, 6),
        torch.ones(n, dtype=torch.bool),
    )
    skeleton = RestSkeleton(torch.randn(22, 3), pelvis_at_origin=True)
    weights = OmegaConf.create({"joints": 1.0, "rotations": 0.1, "shape": 0.01, "others": 0.05, "choice": 0.02})
    total, terms = losses(model, batch, skeleton, weights)
    with torch.no_grad():
        pred = model(batch.features)[0]
        joints = skeleton(pred.flatten(0, 1)).unflatten(0, (n, hypotheses)) - skeleton(batch.rotations)[:, None]
        per = joints.norm(dim=-1).mean((0, 2)) + 0.1 * (pred - batch.rotations[:, None]).pow(2).sum((-1, -2)).mean(
            (0, 2)
        )
    assert per[-1] > 0.001 and per[-1] < 0.5 * per[0]
    assert terms["joints_closest_other"] == pytest.approx(float(joints[:, -1].norm(dim=-1).mean()), rel=1e-5)
    if hypotheses == 2:
        expected = per[0] + per[1]
        assert terms["choice"] == 0.0
    else:
        expected = per[0] + 0.95 * per[2] + 0.05 * per[1] + 0.02 * np.log(2)
        assert abs(terms["choice"] - np.log(2)) < 1e-5
        total.backward()
        logit_grad = model.out.bias.grad[-2:]
        assert logit_grad[1] < 0 < logit_grad[0]  # raise the closest one's logit
    assert float(total.detach()) == pytest.approx(float(expected), abs=1e-5)


def test_widen_keeps_the_trained_answer_and_starts_the_others_near_it():
    source = Initialiser(width=32, blocks=1, hypotheses=1).eval()
    model = widen(source, 3).eval()
    x = torch.randn(4, model.inp[0].in_features)
    (rot0, shape0, logits0), (rot, shape, logits) = source(x), model(x)
    assert torch.equal(rot[:, :1], rot0) and torch.equal(shape, shape0)
    assert logits.shape == (4, 2) and torch.equal(logits, torch.zeros_like(logits)) and logits0.shape == (4, 0)
    spread = (rot[:, 1:] - rot[:, :1]).abs().mean()
    assert 0 < spread < 0.2
    with pytest.raises(ValueError, match="one-hypothesis"):
        widen(model, 4)


def test_deepen_starts_near_the_trained_function_and_trains_its_new_blocks():
    torch.manual_seed(0)
    source = Initialiser(width=32, blocks=1, hypotheses=2)
    source.train()
    source(torch.randn(64, source.inp[0].in_features))  # batch-norm statistics that are not the defaults
    source.eval()
    rng_state = torch.get_rng_state()
    model = deepen(source, 3).eval()
    assert torch.equal(torch.get_rng_state(), rng_state)  # new weights come from its own seed
    assert model.blocks == 3 and model.hypotheses == 2
    x = torch.randn(8, model.inp[0].in_features)
    (rot0, shape0, _), (rot, shape, _) = source(x), model(x)
    assert 0 < (rot - rot0).abs().max() < 0.05 and (shape - shape0).abs().max() < 0.05
    fresh = Initialiser(width=32, blocks=3, hypotheses=2).eval()
    assert (fresh(x)[0] - rot0).abs().max() > 0.1  # what an untrained deeper one would give instead
    model.train()
    model(x)[0].square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.body[2].parameters())
    with pytest.raises(ValueError, match="fewer"):
        deepen(model, 2)
    with pytest.raises(ValueError, match="scale > 0"):
        deepen(source, 2, scale=0.0)
    same = deepen(source, 1).eval()
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), source.state_dict().values()))


def test_shipped_initialiser_beats_the_mean_pose_start_on_held_out_views(anny_body):
    """Held-out actor (FAIR's fair1), any azimuth, BODY_25 with noise and drops, rendered by the fitter's own
    synthetic path: pose error well below the prior's mean pose, orientation close."""
    import prior
    from fitting.config import load_options
    from fitting.fitter import Fitter
    from fitting.hypotheses import LearnedStart
    from fitting.metrics import pa_mpjpe
    from prior.pose_spaces import PoseSpace

    assert DEFAULT_CHECKPOINT.is_file()
    pose = held_out_body_poses(64, seed=5)
    views = render_views(anny_body, pose.numpy(), None, np.random.default_rng(5))
    fitter = Fitter(anny_body, PoseSpace(), load_options())
    pred = LearnedStart(fitter.initialiser, fitter.problem([[f] for f in views.frames])).prediction
    mean_pose = prior.load().decode(torch.zeros(1, 32)).expand(64, -1, -1)
    with torch.no_grad():
        joints = anny_body(body_pose=pred.body_pose, shape=pred.shape).joints[:, :22].numpy()
        mean = anny_body(body_pose=mean_pose).joints[:, :22].numpy()
        truth = anny_body(body_pose=pose).joints[:, :22].numpy()
    learned, baseline = 1000 * pa_mpjpe(joints, truth).mean(), 1000 * pa_mpjpe(mean, truth).mean()
    assert learned < 0.75 * baseline, (learned, baseline)
    # its other hypotheses are other readings: the closest of all is clearly closer than the first
    _, poses = pred.every()
    k = poses.shape[1]
    assert k >= 4
    with torch.no_grad():
        every = anny_body(body_pose=poses.flatten(0, 1), shape=pred.shape.repeat_interleave(k, 0)).joints[:, :22]
    every = every.numpy().reshape(64, k, 22, 3)
    pa = np.stack([pa_mpjpe(every[:, j], truth) for j in range(k)], 1)
    assert np.allclose(pa[:, 0], pa_mpjpe(joints, truth), atol=1e-4)
    assert 1000 * pa.min(1).mean() < learned - 5, (1000 * pa.min(1).mean(), learned)
    true_orient = axis_angle_to_matrix(torch.as_tensor(views.params["global_orient"]))
    angle = torch.rad2deg(geodesic_angle(axis_angle_to_matrix(pred.global_orient), true_orient))
    assert float(angle.median()) < 25, angle


def test_training_runs_saves_and_resumes(tmp_path):
    """On the bundled real mocap: SNU martial-arts actors (training) and FAIR's fair1 (validation)."""
    from prior.data.build import build_dataset
    from prior.initialiser.train import load_config, train
    from tests.prior_data_mocap import HELD_OUT_ACTOR, training_mocap

    mocap = training_mocap(tmp_path / "mocap")
    build_dataset(mocap, tmp_path / "data", fps=15.0, val_subjects=[HELD_OUT_ACTOR], progress=False)
    out = tmp_path / "run"
    args = [f"out_dir={out}", f"data.dataset={tmp_path / 'data'}", "data.max_train_poses=300", "data.val_views=200"]
    args += ["train.steps=6", "train.val_every=3"]
    args += ["model.width=64", f"export={tmp_path / 'ship' / 'init.pt'}"]
    train(load_config(None, args))
    metrics = json.loads((tmp_path / "ship" / "init_metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["finished"] and metrics["val"]["views"] > 50
    assert load(tmp_path / "ship" / "init.pt").width == 64
    assert (tmp_path / "ship" / "init.yaml").is_file()
    train(load_config(None, args[:-1] + ["train.steps=9"]))
    assert [h["step"] for h in json.loads((out / "metrics.json").read_text())["history"]] == [3, 6, 9]
    # widened to 3 hypotheses: its first starts as the trained one; a layout that differs is refused
    wide = [f"out_dir={tmp_path / 'wide'}", f"init_from={tmp_path / 'ship' / 'init.pt'}", "model.hypotheses=3"]
    train(load_config(None, [*args[1:-1], *wide, "train.steps=3"]))
    assert load(tmp_path / "wide" / "initialiser.pt").hypotheses == 3
    # deepened by one residual block
    deep = [f"out_dir={tmp_path / 'deep'}", f"init_from={tmp_path / 'wide' / 'initialiser.pt'}", "model.hypotheses=3"]
    train(load_config(None, [*args[1:-1], *deep, "model.blocks=4", "train.steps=3"]))
    deepened = load(tmp_path / "deep" / "initialiser.pt")
    assert deepened.blocks == 4 and deepened.hypotheses == 3
    # a source with more blocks, or another number of hypotheses (not 1), is refused by key, before any data work
    with pytest.raises(ValueError, match="model.blocks >= 4"):
        train(load_config(None, [*args[1:-1], *deep[:1], f"init_from={tmp_path / 'deep' / 'initialiser.pt'}"]))
    with pytest.raises(ValueError, match="model.hypotheses=3"):
        train(load_config(None, [*args[1:-1], *deep[:2], "model.blocks=4", "model.hypotheses=5"]))
    with pytest.raises(ValueError, match="model.width"):
        train(load_config(None, [*args[1:-2], *wide, "model.width=32"]))
