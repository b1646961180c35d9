"""Keypoints at the cost of the skeleton (`full_mesh=False`): equal to the full mesh's, values and
gradients, on Anny and on SMPL-X (the synthetic file, and one whose vertices blend several joints)."""

from __future__ import annotations

import pytest
import torch

import body
from body.points import PointDef, PointTable


def random_params(model, batch: int, seed: int, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Random poses (hands and jaw included), translations, shapes and expressions."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s, scale=1.0: (torch.randn(*s, generator=g) * scale).to(dtype)  # noqa: E731
    p = {
        "global_orient": r(batch, 3, scale=0.5),
        "body_pose": r(batch, 21, 3, scale=0.4),
        "transl": r(batch, 3),
        "shape": r(batch, model.num_shape),
        "left_hand_pose": r(batch, 15, 3, scale=0.3),
        "right_hand_pose": r(batch, 15, 3, scale=0.3),
        "jaw_pose": r(batch, 3, scale=0.2),
    }
    if model.num_expression:
        p["expression"] = r(batch, model.num_expression)
    return p


def assert_same_keypoints(model, params: dict[str, torch.Tensor], atol: float) -> None:
    full, fast = model(**params), model(**params, full_mesh=False)
    torch.testing.assert_close(fast.joints, full.joints, atol=atol, rtol=0)
    for name in model.keypoint_sets():
        torch.testing.assert_close(fast.keypoints(name), full.keypoints(name), atol=atol, rtol=0, msg=name)


def assert_same_gradients(model, params: dict[str, torch.Tensor]) -> None:
    """Gradients of a random weighting of every keypoint set, through the mesh and the fast path."""
    sets = model.keypoint_sets()
    g = torch.Generator().manual_seed(5)
    weights = {s: torch.randn(model(**params).keypoints(s).shape, generator=g, dtype=model.dtype) for s in sets}

    def grads(full_mesh: bool) -> dict[str, torch.Tensor]:
        p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        out = model(**p, full_mesh=full_mesh)
        loss = sum((out.keypoints(s) * weights[s]).sum() for s in sets) + out.joints.square().sum()
        return dict(zip(p, torch.autograd.grad(loss, list(p.values()))))

    full, fast = grads(True), grads(False)
    for name in params:
        torch.testing.assert_close(fast[name], full[name], atol=1e-9, rtol=1e-9, msg=name)


def shape_gradcheck(model, params: dict[str, torch.Tensor]) -> None:
    """The fast path's keypoints against finite differences in the shape."""

    def keypoints(shape: torch.Tensor) -> torch.Tensor:
        return model(**{**params, "shape": shape}, full_mesh=False).keypoints("coco23")

    shape = params["shape"].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(keypoints, (shape,), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.fixture(scope="module")
def anny64():
    return body.create("anny", dtype=torch.float64)


@pytest.fixture(scope="module")
def blended_smplx(tmp_path_factory):
    """A float64 SMPL-X whose vertices are skinned to three joints each (the synthetic file's to one)."""
    import numpy as np

    from tests.smplx_fixture import synthetic_smplx_arrays, write_npz

    arrays = synthetic_smplx_arrays()
    rng = np.random.default_rng(1)
    weights = arrays["weights"] * 2.0
    rows = np.arange(len(weights))[:, None]
    weights[rows, rng.integers(0, weights.shape[1], (len(weights), 2))] += rng.uniform(0.1, 1.0, (len(weights), 2))
    arrays["weights"] = weights / weights.sum(1, keepdims=True)
    folder = tmp_path_factory.mktemp("smplx_blended")
    write_npz(folder / "SMPLX_NEUTRAL.npz", arrays)
    return body.create("smplx", model_path=folder, dtype=torch.float64)


def test_anny_fast_keypoints_equal_the_mesh(anny_body):
    assert anny_body(full_mesh=False).vertices.shape[1] < 200  # per-bone rest points, not 13k vertices
    for seed in (0, 1):
        assert_same_keypoints(anny_body, random_params(anny_body, 4, seed), atol=2e-6)


def test_anny_keypoint_vertex_path_still_equals_the_mesh(anny_body):
    anny_body.keypoint_vertices = True
    try:
        assert anny_body(full_mesh=False).vertices.shape[1] > 1000
        assert_same_keypoints(anny_body, random_params(anny_body, 3, 2), atol=2e-6)
    finally:
        anny_body.keypoint_vertices = False


def test_anny_fast_keypoints_float64_values_and_gradients(anny64):
    params = random_params(anny64, 2, 3, torch.float64)
    assert_same_keypoints(anny64, params, atol=1e-12)
    assert_same_gradients(anny64, params)
    shape_gradcheck(anny64, {k: v[:1] for k, v in params.items()})


def anny_outputs(model, params: dict[str, torch.Tensor], compact: bool, sets: list[str]):
    """Keypoints of `sets`, joints and the gradients of a random weighting of them, through the
    compact skeleton (`body.anny_skeleton`) or Anny's own code on the same bone model."""
    model.compact_skeleton = compact
    try:
        p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        out = model(**p, full_mesh=False)
        values = [out.keypoints(s) for s in sets] + [out.joints]
        g = torch.Generator().manual_seed(7)
        loss = sum((v * torch.randn(v.shape, generator=g, dtype=v.dtype)).sum() for v in values)
        grads = dict(zip(p, torch.autograd.grad(loss, list(p.values()))))
    finally:
        model.compact_skeleton = True
    return [v.detach() for v in values], grads


def extreme_shapes(params: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """Rows 0 and 1 with phenotypes at their anchors' ends (saturated sigmoids: clamped weights)."""
    shape = params["shape"].clone()
    shape[0], shape[1] = scale, -scale
    return {**params, "shape": shape}


def test_anny_compact_skeleton_equals_annys_own_code(anny_body):
    """float32: the compact skeleton's keypoints and joints against Anny's code on the same points."""
    sets = anny_body.keypoint_sets()
    params = extreme_shapes(random_params(anny_body, 6, 11), 40.0)
    compact, _ = anny_outputs(anny_body, params, True, sets)
    anny, _ = anny_outputs(anny_body, params, False, sets)
    for a, b in zip(compact, anny):
        torch.testing.assert_close(a, b, atol=2e-6, rtol=0)


def test_anny_compact_skeleton_float64_values_and_gradients(anny64):
    """float64: values to 1e-12 m and the gradients of pose, shape and translation to 1e-9 against
    Anny's code on the same points, phenotypes at the ends of their ranges included; a shape
    gradcheck at three rows."""
    sets = anny64.keypoint_sets()
    params = extreme_shapes(random_params(anny64, 5, 12, torch.float64), 40.0)
    compact, compact_grads = anny_outputs(anny64, params, True, sets)
    anny, anny_grads = anny_outputs(anny64, params, False, sets)
    for a, b in zip(compact, anny):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    for name in params:
        torch.testing.assert_close(compact_grads[name], anny_grads[name], atol=1e-9, rtol=1e-9, msg=name)
    shape_gradcheck(anny64, {k: v[2:5] for k, v in params.items()})


def test_anny_compact_coefficients_are_annys(anny_body, anny64):
    """The blend-shape coefficients of `AnnySkeleton.coefficients` (both paths' and the mesh's) are
    Anny's own `_get_phenotype_blendshape_coefficients`: to the bit in float32 (the fitter's), to
    1e-15 in float64 (Anny's masked product rounds in another order); anchors' ends and clamped
    values included."""
    for model in (anny_body, anny64):
        g = torch.Generator().manual_seed(3)
        phenotypes = torch.rand(40, 6, generator=g).to(model.dtype)
        phenotypes[0], phenotypes[1], phenotypes[2] = 0.0, 1.0, 1.0 / 3.0
        phenotypes[3] = torch.tensor([0.5, 2.0 / 3.0, 0.5, 0.5, 0.5, 0.5])
        phenotypes[4] = torch.tensor([-0.1, -0.5, 1.2, 2.0, -3.0, 0.0])  # outside the anchors: clamped
        none = phenotypes.new_zeros(len(phenotypes), 0)  # the SOMA rig has no local changes or facial actions
        annys = model.model._get_phenotype_blendshape_coefficients(phenotypes, none, none)
        ours = model.skeleton.coefficients(phenotypes)
        if model.dtype == torch.float32:
            assert torch.equal(ours, annys)
        else:
            torch.testing.assert_close(ours, annys, atol=1e-15, rtol=0)


def test_anny_compact_rotations_are_romas(anny_body, anny64):
    """The compact skeleton's nearest rotations (`_NearestRotation`) and axis-angle matrices against
    roma's: Procrustes values to 1e-13 and its damped gradient to 1e-12 relative in float64 (reflections,
    tiny singular values and a scale where the damping matters included); axis-angles to the bit."""
    import roma

    from body.anny_skeleton import _NearestRotation

    g = torch.Generator().manual_seed(4)
    for scale in (1.0, 1e-3):
        m = torch.randn(300, 3, 3, generator=g, dtype=torch.float64) * scale
        m[:40, :, 2] *= 1e-3  # a small singular value
        m[40:80] *= -1  # det < 0: the nearest rotation is not the polar factor
        weights = torch.randn(m.shape, generator=g, dtype=torch.float64)
        ours = m.clone().requires_grad_(True)
        theirs = m.clone().requires_grad_(True)
        r_ours = _NearestRotation.apply(ours, anny64.skeleton.horn, anny64.skeleton.skew)
        r_theirs = roma.special_procrustes(theirs)
        torch.testing.assert_close(r_ours, r_theirs, atol=1e-13, rtol=0)
        (g_ours,) = torch.autograd.grad((r_ours * weights).sum(), ours)
        (g_theirs,) = torch.autograd.grad((r_theirs * weights).sum(), theirs)
        torch.testing.assert_close(g_ours, g_theirs, atol=1e-12 * g_theirs.abs().max().item(), rtol=0)
    for model in (anny_body, anny64):
        rotvec = torch.randn(500, 3, generator=g).to(model.dtype) * 1.5
        rotvec[:10] = 0.0
        rotvec[10:20] *= 1e-7  # below roma's first-order threshold
        assert torch.equal(model.skeleton.rotations(rotvec), roma.rotvec_to_rotmat(rotvec))


def test_anny_shortest_arcs_are_annys_and_row_by_row(anny64):
    """The refinement's shortest arcs equal Anny's `_shortest_arc_rotation`, and an antiparallel pair
    (Anny's own function takes it) leaves every other row's bits as they were without it."""
    from anny.models.orientation_refinement import _shortest_arc_rotation

    g = torch.Generator().manual_seed(5)
    target = torch.randn(6, 4, 3, generator=g, dtype=torch.float64)
    source = torch.randn(6, 4, 3, generator=g, dtype=torch.float64)
    arcs = anny64.skeleton._shortest_arc(target, source)
    torch.testing.assert_close(arcs, _shortest_arc_rotation(target, source), atol=1e-12, rtol=0)
    opposite = source.clone()
    opposite[2, 1] = -2.0 * target[2, 1]
    mixed = anny64.skeleton._shortest_arc(target, opposite)
    keep = torch.ones(6, 4, dtype=torch.bool)
    keep[2, 1] = False
    assert torch.equal(mixed[keep], arcs[keep])
    torch.testing.assert_close(mixed[2, 1], _shortest_arc_rotation(target[2, 1], opposite[2, 1]), atol=1e-12, rtol=0)
    assert torch.isfinite(mixed).all()


def _near_rotations(count: int, g: torch.Generator, condition: float) -> torch.Tensor:
    """Random float64 3x3 matrices R diag(s) V^T with det > 0, singular values in [1 / condition, 1]."""
    import roma

    u = roma.random_rotmat(count, dtype=torch.float64)
    v = roma.random_rotmat(count, dtype=torch.float64)
    s = torch.exp(-torch.rand(count, 3, generator=g, dtype=torch.float64) * torch.log(torch.tensor(condition)))
    s[:, 0] = 1.0
    return u @ torch.diag_embed(s) @ v.transpose(-1, -2)


def test_anny_polar_newton_is_romas_procrustes(anny64):
    """`_polar_newton` (the nearest rotations' fast path) against `roma.special_procrustes` in
    float64: to 1e-12 wherever it reports convergence, which it does for the bone orientation and
    Kabsch matrices of any shape and for det > 0 matrices with condition numbers up to 200 at any
    scale; near reflections (det < 0), near-singular and non-finite matrices are not reported
    converged, and `_NearestRotation` (falling back to `eigh` for them) matches roma on all."""
    import roma

    from body.anny_skeleton import _NearestRotation, _polar_newton

    torch.manual_seed(5)
    g = torch.Generator().manual_seed(5)
    # Well-conditioned to moderately ill-conditioned, at scales from 1e-4 to 1e2: the fast path.
    m = torch.cat([_near_rotations(200, g, c) * scale for c in (1.5, 30.0, 200.0) for scale in (1e-4, 1.0, 1e2)])
    r, converged = _polar_newton(m)
    assert bool(converged.all())
    torch.testing.assert_close(r, roma.special_procrustes(m), atol=1e-12, rtol=0)
    # Near reflections, near-singular (det > 0 but a singular value of 1e-10), non-finite: the fallback.
    reflected = _near_rotations(50, g, 3.0) * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    reflected[:10, :, 2] *= 1e-8  # det < 0 but barely: nearly singular too
    singular = _near_rotations(50, g, 3.0)
    singular[:, :, 2] *= 1e-10
    bad = torch.cat([reflected, singular, torch.full((2, 3, 3), float("nan"), dtype=torch.float64)])
    assert not bool(_polar_newton(bad)[1].any())
    mixed = torch.cat([m[::7], bad[:-2]])[torch.randperm(len(m[::7]) + len(bad) - 2)]
    weights = torch.randn(mixed.shape, generator=g, dtype=torch.float64)
    ours = mixed.clone().requires_grad_(True)
    theirs = mixed.clone().requires_grad_(True)
    horn, skew = anny64.skeleton.horn, anny64.skeleton.skew
    r_ours = _NearestRotation.apply(ours, horn, skew)
    r_theirs = roma.special_procrustes(theirs)
    torch.testing.assert_close(r_ours, r_theirs, atol=1e-12, rtol=0)
    (g_ours,) = torch.autograd.grad((r_ours * weights).sum(), ours)
    (g_theirs,) = torch.autograd.grad((r_theirs * weights).sum(), theirs)
    torch.testing.assert_close(g_ours, g_theirs, atol=1e-12 * g_theirs.abs().max().item(), rtol=0)
    # Per matrix: in a call of the same size, each one's result is the same bits at any position and
    # whichever other matrices fall back (rows of `mixed` among converging ones, and permuted).
    mixed, r_ours = mixed.detach(), r_ours.detach()
    keep = torch.rand(len(mixed), generator=g) < 0.5
    others = torch.where(keep[:, None, None], mixed, m[: len(mixed)])
    assert torch.equal(_NearestRotation.apply(others, horn, skew)[keep], r_ours[keep])
    perm = torch.randperm(len(mixed), generator=g)
    assert torch.equal(_NearestRotation.apply(mixed[perm], horn, skew), r_ours[perm])
    # The skeleton's own matrices: bone orientations and Kabsch fits, phenotypes at their ends included.
    sk = anny64.skeleton
    shape = torch.randn(64, 6, generator=g, dtype=torch.float64) * 3.0
    shape[:2] = torch.tensor([40.0, -40.0], dtype=torch.float64)[:, None]
    _, heads, matrices = sk.blend(sk.coefficients(anny64.phenotypes(shape)))
    r, converged = _polar_newton(matrices)
    assert bool(converged.all())
    torch.testing.assert_close(r, roma.special_procrustes(matrices), atol=1e-12, rtol=0)
    kabsch = []
    original = sk.procrustes
    sk.procrustes = lambda x: (kabsch.append(x), original(x))[1]
    try:
        sk.refine(original(matrices), heads)
    finally:
        del sk.procrustes
    assert len(kabsch) == 1 and bool(_polar_newton(kabsch[0])[1].all())


def test_anny_nearest_rotation_fallback_is_the_same_in_calls_of_any_size(anny64):
    """The `eigh` fallback of `_NearestRotation` (near-singular and reflected matrices) runs in
    pieces of 16 rows: a failing row gets the same bits in calls of 16 and 48 rows (the fitter's call
    sizes) at any position, and in a call of 20 rows (its last piece padded)."""
    from body.anny_skeleton import _NearestRotation, _polar_newton

    g = torch.Generator().manual_seed(7)
    rows = _near_rotations(48 * 5, g, 3.0).reshape(48, 5, 3, 3)
    rows[5, 1] = rows[5, 1] * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)  # reflected
    rows[21, 3, :, 2] *= 1e-10  # near-singular
    rows[40, 0] = rows[40, 0] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    rows[40, 4, :, 0] *= 1e-12
    converged = _polar_newton(rows)[1]
    assert not bool(converged[[5, 21, 40]].all(1).any()) and bool(converged[[0, 16, 47]].all())
    horn, skew = anny64.skeleton.horn, anny64.skeleton.skew
    alone = torch.cat([_NearestRotation.apply(rows[i : i + 16], horn, skew) for i in (0, 16, 32)])
    assert torch.equal(_NearestRotation.apply(rows, horn, skew), alone)
    # Each failing row placed at other positions of calls of 16, 48 and 20 rows among converging rows.
    fill = rows[[0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]].repeat(3, 1, 1, 1)
    for bad in (5, 21, 40):
        for size, at in ((16, 0), (16, 15), (48, 7), (48, 33), (48, 47), (20, 18)):
            call = fill[:size].clone()
            call[at] = rows[bad]
            assert torch.equal(_NearestRotation.apply(call, horn, skew)[at], alone[bad]), (bad, size, at)


def test_smplx_fast_keypoints_equal_the_mesh(smplx_body):
    assert smplx_body(full_mesh=False).vertices.shape[1] < 300
    for seed in (0, 1):
        assert_same_keypoints(smplx_body, random_params(smplx_body, 4, seed), atol=2e-6)


def test_smplx_blended_skin_values_and_gradients(blended_smplx):
    params = random_params(blended_smplx, 3, 4, torch.float64)
    assert_same_keypoints(blended_smplx, params, atol=1e-12)
    assert_same_gradients(blended_smplx, params)
    shape_gradcheck(blended_smplx, {k: v[:1] for k, v in params.items()})


def test_bound_to_bones_splits_points_by_bone():
    table = PointTable(
        {
            "a": PointDef(vertices={0: 0.25, 2: 0.75}),
            "b": PointDef.blend((PointDef.vertex(1), 0.5), (PointDef.joint(0), 0.5)),
        },
        num_vertices=3,
        num_joints=2,
    )
    skin = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    bound = table.bound_to_bones(skin)
    assert bound.bones.tolist() == [0, 1, 0, 1]
    assert bound.points.points["a"].vertices == {0: 0.25, 1: 0.75}
    assert bound.points.points["b"].vertices == {2: 0.25, 3: 0.25} and bound.points.points["b"].joints == {0: 0.5}
    torch.testing.assert_close(bound.mix.sum(1), torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="negative"):
        PointTable({"c": PointDef(vertices={0: -1.0})}, 1, 1).bound_to_bones(torch.ones(1, 1))
