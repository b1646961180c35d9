"""The fitting core's pluggable parts on both body models: terms, stages, hypotheses, the iteration hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fitting.config import ConfigError, load_config, load_options
from fitting.fitter import Fitter
from fitting.hypotheses import HYPOTHESES, Hypothesis, Rows, StartContext
from fitting.options import FitOptions
from fitting.starts import Start
from fitting.synthetic import render_views
from fitting.terms import Evaluation, Term, register
from prior.pose_spaces import PoseSpace

# The camera stage and SMPLify-X's last stage, a few iterations each: these tests check the mechanics.
SHORT = ["prior.kind=none", "schedule=[camera,body5]", "stages.camera.max_iter=8", "optimizer.max_iter=8"]


@register
class PelvisToTheRight(Term):
    """A term defined here, outside the fitting package: pull the pelvis to x = +1 m."""

    name, reads = "test_pelvis_to_the_right", ("transl",)

    def __call__(self, e: Evaluation) -> torch.Tensor:
        return (e.v["transl"][..., 0] - 1.0) ** 2


def _views(model, n: int = 2, seed: int = 0):
    pose = np.zeros((n, 21, 3), np.float32)
    pose[:, 17, 1] = -0.8  # left elbow bent
    return render_views(
        model,
        pose,
        None,
        np.random.default_rng(seed),
        keypoint_sets=("body25",),
        noise_px=0.0,
        drop=0.0,
        azimuth_deg=(-30, 30),
        shape=np.zeros((n, model.num_shape), np.float32),
    )


def test_a_loss_term_defined_in_a_test_joins_a_stage_through_config_alone(fit_body):
    views = _views(fit_body)
    plain = Fitter(fit_body, PoseSpace(), load_options(None, SHORT)).fit_frames(views.frames)
    cfg = load_config(None, [*SHORT, "stages.body5.weights.test_pelvis_to_the_right=300"])
    pulled = Fitter(fit_body, PoseSpace(), FitOptions.of(cfg)).fit_frames(views.frames)
    for a, b in zip(plain, pulled):
        assert "test_pelvis_to_the_right" in b.terms and "test_pelvis_to_the_right" not in a.terms
        assert b.params["transl"][0] > a.params["transl"][0] + 0.05  # moved toward x = +1 m


class _Given(Hypothesis):
    """Starts every frame from per-frame values (the truth, or a corrupted copy of it)."""

    def __init__(self, name: str, values: dict[str, torch.Tensor]) -> None:
        self.name, self.values = name, values

    def __call__(self, ctx: StartContext) -> tuple[torch.Tensor, Start]:
        return torch.arange(ctx.problem.rows), Start(self.values)


def test_of_three_start_hypotheses_the_known_best_wins(fit_body):
    views = _views(fit_body, n=2, seed=3)
    truth = {k: torch.as_tensor(v).reshape(2, -1) for k, v in views.params.items() if k != "body_pose"}
    truth["pose"] = torch.as_tensor(views.params["body_pose"]).reshape(2, -1)
    far = dict(truth, transl=truth["transl"] + torch.tensor([0.8, 0.0, 3.0]))
    turned = dict(truth, global_orient=truth["global_orient"] + torch.tensor([0.0, 2.5, 0.0]))
    cfg = load_config(None, ["prior.kind=none", "schedule=[body5]", "optimizer.max_iter=3"])
    fitter = Fitter(fit_body, PoseSpace(), FitOptions.of(cfg))
    results = fitter.fit_frames(
        views.frames, hypotheses=[_Given("far", far), _Given("truth", truth), _Given("turned", turned)]
    )
    for i, r in enumerate(results):
        assert r.hypothesis_names == ("far", "truth", "turned")
        assert r.hypothesis == 1 and np.isfinite(r.hypothesis_losses).all()
        assert r.hypothesis_losses[1] < 0.5 * min(r.hypothesis_losses[0], r.hypothesis_losses[2])
        assert np.allclose(r.params["transl"], truth["transl"][i].numpy(), atol=0.05)


def test_rows_prune_keeps_each_frames_lowest_starts():
    # as Rows.expand lays them out: hypothesis by hypothesis (the third gives no start for frame 2)
    rows = Rows(np.array([0, 1, 2, 0, 1, 2, 0, 1]), np.array([0, 0, 0, 1, 1, 1, 2, 2]), [])
    losses = np.array([3.0, 2.0, 5.0, 1.0, 2.0, np.inf, np.nan, 0.5])
    np.testing.assert_array_equal(rows.prune(losses, 1), [2, 3, 7])
    np.testing.assert_array_equal(rows.prune(losses, 2), [0, 1, 2, 3, 5, 7])  # tie (1, 4): the earlier; NaN last
    np.testing.assert_array_equal(rows.take(np.array([3, 7])).frame, [0, 1])


def test_pruned_starts_stop_and_the_kept_ones_fit_as_without_pruning(fit_body):
    """Three known starts; after the first stage each frame keeps its lowest one, which then ends exactly
    as it does when every start runs the whole schedule (a row's arithmetic does not see the others),
    including a term that reads the schedule's start values, and the hook sees the kept rows' frames."""
    views = _views(fit_body, n=2, seed=3)
    truth = {k: torch.as_tensor(v).reshape(2, -1) for k, v in views.params.items() if k != "body_pose"}
    truth["pose"] = torch.as_tensor(views.params["body_pose"]).reshape(2, -1)
    given = [
        dict(truth, transl=truth["transl"] + torch.tensor([0.8, 0.0, 3.0])),
        dict(truth, pose=truth["pose"] + 0.2),
        dict(truth, global_orient=truth["global_orient"] + torch.tensor([0.0, 2.5, 0.0])),
    ]
    starts = [_Given(name, values) for name, values in zip(("far", "near", "turned"), given)]
    settings = [
        "prior.kind=none",
        "schedule=[body4,body5]",
        "stages.body5.weights.depth=100",
        "stages.body5.weights.start_skeleton=30",
        "optimizer.max_iter=3",
    ]
    # body4 moves the pose: the continued stage must still read the start's skeleton, not body4's
    first = Fitter(fit_body, PoseSpace(), load_options(None, [*settings, "schedule=[body4]"]))
    whole = Fitter(fit_body, PoseSpace(), load_options(None, settings))
    pruned = Fitter(fit_body, PoseSpace(), load_options(None, [*settings, "init.keep=1", "init.prune_after=body4"]))
    seen: list[tuple[str, int, list[int]]] = []
    pruned.on_iteration(lambda stage, it, frames, terms: seen.append((stage, it, frames.tolist())))
    after_first = [r.hypothesis_losses for r in first.fit_frames(views.frames, hypotheses=starts)]
    every, kept_only = (
        whole.fit_frames(views.frames, hypotheses=starts),
        pruned.fit_frames(views.frames, hypotheses=starts),
    )
    for i, (a, b) in enumerate(zip(every, kept_only)):
        kept = int(np.argmin(after_first[i]))
        assert b.hypothesis == kept and np.isnan(np.delete(b.hypothesis_losses, kept)).all()
        assert b.hypothesis_losses[kept] == a.hypothesis_losses[kept]
        assert len(b.stage_losses) == 2 and b.stage_losses[0] == pytest.approx(after_first[i][kept])
        assert np.allclose(b.start_orient, given[kept]["global_orient"][i].numpy())
    body5 = [frames for stage, _, frames in seen if stage == "body5"]
    assert body5 and all(sorted(f) == sorted(set(f)) and set(f) <= {0, 1} for f in body5)
    # body4's first iteration: every start of both frames (rows report each iteration once, maybe in parts)
    assert sorted(sum((f for stage, it, f in seen if stage == "body4" and it == 1), [])) == [0, 0, 0, 1, 1, 1]


def test_the_skeleton_is_the_pose_whatever_the_turn_and_place(fit_body):
    from fitting.terms import body_skeleton

    gen = torch.Generator().manual_seed(0)
    pose = 0.3 * torch.randn(2, 21, 3, generator=gen)
    pose[1] = pose[0]
    orient = torch.tensor([[0.0, 0.0, 0.0], [0.4, -2.0, 0.7]])
    out = fit_body(body_pose=pose, global_orient=orient, transl=torch.tensor([[0.0, 0.0, 0.0], [1.0, -0.5, 4.0]]))
    skeleton = body_skeleton(out, orient)
    assert torch.allclose(skeleton[0], skeleton[1], atol=1e-5)  # the same pose, turned and moved
    assert skeleton[0, 0].abs().max() < 1e-6
    other = fit_body(body_pose=torch.full_like(pose, 0.5), global_orient=orient[:1].expand(2, -1))
    assert (body_skeleton(other, orient[:1].expand(2, -1))[0] - skeleton[0]).norm(dim=-1).mean() > 0.05


def test_the_start_skeleton_term_holds_the_start_where_the_points_pull_away(fit_body):
    """Started with the left forearm lowered (and a bent right arm), with points of it raised in the
    image plane: without the term the fit moves the arm to the points; with it the skeleton stays near
    that start, not near the points' pose or the zero pose."""
    from fitting.terms import body_skeleton

    pose = np.zeros((1, 21, 3), np.float32)
    pose[:, 17, 2] = 1.0  # left elbow, about the axis toward the camera
    views = render_views(
        fit_body,
        pose,
        np.zeros((1, 3), np.float32),
        np.random.default_rng(5),
        keypoint_sets=("body25",),
        noise_px=0.0,
        drop=0.0,
        azimuth_deg=(0, 0),
        shape=np.zeros((1, fit_body.num_shape), np.float32),
    )
    truth = {k: torch.as_tensor(v).reshape(1, -1) for k, v in views.params.items() if k != "body_pose"}
    start_pose = torch.zeros(1, 21, 3)
    start_pose[:, 17, 2], start_pose[:, 18, 2] = -0.7, 0.8  # left forearm down, right elbow bent
    lowered = dict(truth, pose=start_pose.reshape(1, 63))
    base = ["prior.kind=none", "schedule=[body5]", "optimizer.max_iter=20"]

    def fit(weight: float):
        cfg = load_config(None, [*base, f"stages.body5.weights.start_skeleton={weight}"])
        fitter = Fitter(fit_body, PoseSpace(), FitOptions.of(cfg))
        (result,) = fitter.fit_frames(views.frames, hypotheses=[_Given("lowered", lowered)])
        return result

    def skeleton(params) -> torch.Tensor:
        kw = {k: torch.as_tensor(params[k]).reshape(1, -1) for k in ("global_orient", "body_pose", "shape")}
        return body_skeleton(fit_body(**kw), kw["global_orient"])[0]

    free, held = fit(0.0), fit(3000.0)
    start = skeleton({**views.params, "body_pose": start_pose.reshape(63).numpy()})
    zero = skeleton({**views.params, "body_pose": np.zeros(63, np.float32)})
    far = lambda a, b: (a - b).norm(dim=-1).max()  # noqa: E731
    assert far(skeleton(views.params), start) > 0.2 and far(zero, start) > 0.1
    assert far(skeleton(free.params), start) > 0.1
    assert far(skeleton(held.params), start) < 0.3 * far(skeleton(free.params), start)
    assert far(skeleton(held.params), zero) > 0.7 * far(zero, start)
    assert "start_skeleton" in held.terms and "start_skeleton" not in free.terms


def test_side_views_start_both_ways_and_frontal_views_once(anny_body):
    views = render_views(
        anny_body,
        np.zeros((2, 21, 3), np.float32),
        None,
        np.random.default_rng(0),
        keypoint_sets=("body25",),
        noise_px=0.0,
        drop=0.0,
        azimuth_deg=(0, 0),
    )
    side = render_views(
        anny_body,
        np.zeros((1, 21, 3), np.float32),
        None,
        np.random.default_rng(0),
        keypoint_sets=("body25",),
        noise_px=0.0,
        drop=0.0,
        azimuth_deg=(90, 90),
    )
    cfg = load_config(None, ["prior.kind=none", "schedule=[camera]", "init.hypotheses=[torso,side_view_twin]"])
    results = Fitter(anny_body, PoseSpace(), FitOptions.of(cfg)).fit_frames([views.frames[0], side.frames[0]])
    assert np.isnan(results[0].hypothesis_losses[1]) and np.isfinite(results[1].hypothesis_losses).all()
    # the twin starts turned the other way about the vertical (the two yaws differ in sign)
    assert results[1].hypothesis_names == ("torso", "side_view_twin")


def test_learned_starts_take_the_initialisers_pose_and_turn_and_anny_its_shape(fit_body):
    """The camera stage frees only orientation and translation: the body pose (and, on Anny, the shape)
    stay at the initialiser's prediction, its second hypothesis or its depth twin; SMPL-X keeps its mean
    shape."""
    from fitting.hypotheses import LearnedStart, depth_twin, takes_learned_shape

    views = _views(fit_body, n=3, seed=4)
    names = ("initialiser", "initialiser_2", "initialiser_twin")
    cfg = load_config(None, ["prior.kind=none", "schedule=[camera]", f"init.hypotheses=[{','.join(names)}]"])
    fitter = Fitter(fit_body, PoseSpace(), FitOptions.of(cfg))
    pred = LearnedStart(fitter.initialiser, fitter.problem([[f] for f in views.frames])).prediction
    twin_orient, twin_pose = depth_twin(pred.global_orient, pred.body_pose)
    poses = (pred.body_pose, pred.others_pose[:, 0], twin_pose)
    orients = (pred.global_orient, pred.others_orient[:, 0], twin_orient)
    assert not torch.allclose(poses[0], poses[1], atol=0.05)
    base = fitter.problem([[f] for f in views.frames])
    ctx = StartContext(base, fitter.starter.torso_view(base), PoseSpace(), LearnedStart(fitter.initialiser, base), True)
    for rank in (2, 5):  # each generator starts from its own hypothesis, winning or not
        _, start = HYPOTHESES.create(f"initialiser_{rank}")(ctx)
        assert torch.allclose(start.values["global_orient"], pred.others_orient[:, rank - 2])
        assert torch.allclose(start.values["pose"], PoseSpace().encode(pred.others_pose[:, rank - 2]))
        assert torch.equal(start.body_pose, pred.others_pose[:, rank - 2])
    free = fitter.fit_frames(views.frames)
    for i, r in enumerate(free):
        assert r.hypothesis_names == names and np.isfinite(r.hypothesis_losses).all()
        assert np.allclose(r.params["body_pose"], poses[r.hypothesis][i].numpy(), atol=1e-4)
        assert np.allclose(r.start_orient, orients[r.hypothesis][i].numpy(), atol=1e-5)
        shape = pred.shape[i].numpy() if takes_learned_shape(fit_body) else np.zeros(fit_body.num_shape)
        assert np.allclose(r.params["shape"], shape, atol=1e-5)


def test_the_iteration_hook_sees_each_stages_terms(fit_body):
    calls: list[tuple[str, int, int, tuple[str, ...]]] = []
    fitter = Fitter(fit_body, PoseSpace(), load_options(None, SHORT))
    fitter.on_iteration(lambda stage, it, rows, terms: calls.append((stage, it, len(rows), tuple(sorted(terms)))))
    (result,) = fitter.fit_frames(_views(fit_body, n=1).frames)
    stages = [c[0] for c in calls]
    assert stages == sorted(stages, key=["camera", "body5"].index)  # in schedule order
    camera = [c for c in calls if c[0] == "camera"]
    assert camera[0][3] == ("depth", "torso_data")
    assert len(camera) == result.iterations[0]  # one call per iteration of the row
    assert {"body_data", "pose_prior", "bending", "shape_prior"} <= set(calls[-1][3])


@pytest.mark.parametrize(
    "override, named",
    [
        ("stages.body1.weights.no_such_term=1", "no_such_term"),
        ("stages.body1.free=[pose,elbows]", "elbows"),
        ("schedule=[camera,body9]", "body9"),
        ("init.hypotheses=[torso,psychic]", "psychic"),
        ("init.keep=2", "init.prune_after"),
        ("init.keep=0", "init.keep"),
        ("stages.body2.weights.pose_prior=-1", "stages.body2.weights.pose_prior"),
        ("stages.body3.max_iter=0", "stages.body3.max_iter"),
        ("stages.body3.max_iters=5", "max_iters"),
    ],
)
def test_a_bad_stage_setting_fails_at_load_naming_it(override, named):
    with pytest.raises(ConfigError, match=named):
        load_config(None, [override])


def test_a_learned_start_is_held_at_the_initialisers_own_reading(fit_body):
    """VPoser's encoder only approximates the initialiser's predicted pose: the start skeleton the anchored
    stages hold a fit near is the prediction's own; a start without a pose of its own (torso) keeps its
    variable's."""
    from fitting.hypotheses import LearnedStart, takes_learned_shape
    from fitting.priors import load_pose_space
    from fitting.terms import body_skeleton

    views = _views(fit_body, n=3, seed=4)
    space = load_pose_space("vposer")
    fitter = Fitter(fit_body, space, load_options(None, []))
    base = fitter.problem([[f] for f in views.frames])
    learned = LearnedStart(fitter.initialiser, base)
    ctx = StartContext(base, fitter.starter.torso_view(base), space, learned, takes_learned_shape(fit_body))
    rows = Rows.expand([HYPOTHESES.create("initialiser"), HYPOTHESES.create("torso")], ctx)
    problem = base.take(torch.as_tensor(rows.frame))
    v = fitter.starter.start(problem, rows.blocks)
    held = fitter.starter.anchor(problem, v, rows.blocks).skeleton[:, 0]
    decoded = fitter.starter.anchor(problem, v).skeleton[:, 0]
    pred = learned.prediction
    with torch.no_grad():
        own = body_skeleton(
            fit_body(global_orient=pred.global_orient, body_pose=pred.body_pose, shape=v["shape"][:3]),
            pred.global_orient,
        )
    torch.testing.assert_close(held[:3], own, atol=1e-5, rtol=0)
    assert (decoded[:3] - own).norm(dim=-1).mean(-1).min() > 0.005
    torch.testing.assert_close(held[3:], decoded[3:], atol=0, rtol=0)
    # a fit reads it: turning and moving the body (the camera stage) leaves the term at that distance
    cfg = load_config(None, ["schedule=[camera]", "stages.camera.weights.start_skeleton=1"])
    terms = [r.terms["start_skeleton"] for r in Fitter(fit_body, space, FitOptions.of(cfg)).fit_frames(views.frames)]
    np.testing.assert_allclose(terms, (decoded[:3] - own).square().sum((-1, -2)).numpy(), rtol=1e-3)
