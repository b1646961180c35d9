"""Anny's skeleton and the points riding on it in a few batched ops: `AnnyBody`'s `full_mesh=False`.

The bone model (`body.anny_body._vertex_model`) is an Anny whose "vertices" are the keypoints'
per-bone rest points, each skinned by one bone. Anny's generic code evaluates it in ~880 ops forward
and ~990 backward at 16 rows (its phenotype weights one phenotype at a time, roma's closed-form
Procrustes in ~120 small ops a call, its refinement of the rest orientations bone group by bone
group, forward kinematics level by level, a Warp kernel for skinning). `AnnySkeleton` computes the
same numbers (to rounding) in a few hundred:

- Blend-shape coefficients: the phenotypes' interpolation weights for all six phenotypes at once
  (Anny's `linear_interpolation_coefficients` per phenotype), then the product over each blend
  shape's variations (the variations gathered by a product with a one-hot matrix, whose backward is
  another product) and Anny's projection: Anny's `_get_phenotype_blendshape_coefficients`, the same
  bits in float32 (~1e-16 apart in float64). Both of `AnnyBody`'s paths (the mesh too) use it.
- Rest model: one matrix product gives the rest points, bone heads and the orientation matrices
  (Anny's "cached" Procrustes inputs) of the bones whose orientation some offset uses (61 of 78:
  not the end bones, which copy their parent's, nor the root); their nearest rotations in one call
  (`_NearestRotation`: roma's `special_procrustes` values and damped derivative, by Newton's scaled
  polar iteration in float64, `eigh` for the matrices it does not converge on, and a short analytic
  backward); the SOMA child-offset refinement (`ChildOffsetOrientationRefiner`) in
  one pass: the multi-child bones' Kabsch fits in one more `_NearestRotation`, the single-child
  bones' shortest arcs as a few elementwise ops, one product with the rest orientations.
- Forward kinematics in Anny's `local-ref` convention, rewritten. With R_c the rest orientation,
  h_c the head and U_c the reference orientation of bone c (parent p), Anny's posed pose is
  W_c = [E_c U_c | w_c] where E_c = E_p D_c and w_c = w_p + E_p o_c, o_c = U_p R_p^T (h_c - h_p)
  (U_0 R_0^T taken as I for the root's children), E_0 = D_0 and w_0 = transl (U_0 = I on SOMA).
  So the chain is products of the affine maps [D_c | o_c], bones ordered by depth: one gather of
  the parents (in the level above) and one batched 4x4 product per level, Anny's 14 levels, 78
  products a row (pointer jumping took fewer ops but 4 x 79 products a row, which cost more from
  ~16 rows up). D_c from axis-angles by roma's `rotvec_to_rotmat` formula in fewer ops (the same
  bits).
- Skinning: a point r on bone b is posed as T_b r = E_b (U_b R_b^T (r - h_b)) + w_b, Anny's
  W_b P_b^-1 applied to it; the local coordinates U_b R_b^T (r - h_b) depend on the shape only (and
  are cached with the rest model), so points and joints (local (0, 0, 0)) are one gather of the
  posed 4x4 transforms and one batched matrix-vector product.

Every op works row by row (no reduction over the batch), so a row's result does not depend on the
other rows of its call. `tests/test_body_keypoints.py` checks keypoints, joints, gradients and a
shape gradcheck against Anny's full mesh.
"""

from __future__ import annotations

import torch

# Method -> part, for benchmarks/profile_fit.py --anny-parts (op counts by part).
PROFILE_PARTS = {
    "coefficients": "coefficients",
    "blend": "rest points, heads, orientation matrices (one matmul)",
    "procrustes": "procrustes",
    "refine": "refinement",
    "local_offsets": "offsets",
    "chain": "FK",
    "skin": "skinning",
}

# Anny's `_shortest_arc_rotation`: a dot product below -1 + this is treated as antiparallel.
_ANTIPARALLEL = 1e-6

# `_polar_newton`: steps, and the largest last step (per entry) of a converged matrix.
_NEWTON_ITERATIONS = 7
_NEWTON_TOLERANCE = 1e-10


class AnnySkeleton(torch.nn.Module):
    """Keypoints' per-bone rest points and output joints of `bone_model` (an Anny built by
    `body.anny_body._vertex_model`, each vertex on one bone), posed in a few batched ops.

    `rest(phenotypes)` gives the shape's rest quantities (cacheable: the same for any pose);
    `pose(pose, transl, rest)` the posed points (B, P, 3) and output joints (B, J, 3)."""

    def __init__(
        self,
        phenotype_model,
        bone_model,
        blendshape_factors: torch.Tensor,
        pose_bones: torch.Tensor,
        output_bones: torch.Tensor,
    ) -> None:
        super().__init__()
        _check_rig(bone_model)
        parents = [int(p) for p in bone_model.bone_parents]
        point_bones = bone_model.vertex_bone_indices[:, 0].to(device=bone_model.device, dtype=torch.long)
        self._phenotype_tables(phenotype_model, blendshape_factors)
        oriented = self._orientation_tables(bone_model, parents, point_bones)
        self._blend_tables(bone_model, oriented)
        self._kinematic_tables(bone_model, parents, pose_bones, point_bones, output_bones)

    def _phenotype_tables(self, phenotype_model, blendshape_factors: torch.Tensor) -> None:
        """Phenotypes -> variation weights -> blend-shape weights (`coefficients`)."""
        from anny.models.phenotype import PHENOTYPE_VARIATIONS, phenotype_blendshape_weights

        kw = dict(device=phenotype_model.device, dtype=phenotype_model.dtype)
        long = dict(device=phenotype_model.device, dtype=torch.long)
        device = phenotype_model.device
        labels = list(phenotype_model.phenotype_labels)
        anchors = [phenotype_model.anchors[label].to(**kw) for label in labels]
        width = max(len(a) for a in anchors)
        table = torch.full((len(labels), width), float("inf"), **kw)
        for i, a in enumerate(anchors):
            table[i, : len(a)] = a
        self.register_buffer("anchors", table, persistent=False)
        self.register_buffer("anchor_low", torch.stack([a[0] for a in anchors]), persistent=False)
        self.register_buffer("anchor_high", torch.stack([a[-1] for a in anchors]), persistent=False)
        self.register_buffer("anchor_last", torch.tensor([len(a) - 1 for a in anchors], **long), persistent=False)
        self.register_buffer("anchor_start", torch.arange(len(labels), **long) * width, persistent=False)
        self.register_buffer("anchor_slot", torch.arange(width, **long), persistent=False)
        # Anny's variation columns (dict merge order, then the stacking order), as positions in
        # [the exposed phenotypes' (B, 6 * width) weights | constant columns | 1].
        source: dict[str, tuple[str, int]] = {}
        for feature in ("age", "gender", "muscle", "weight", "height", "proportions", "cupsize", "firmness", "race"):
            for i, key in enumerate(PHENOTYPE_VARIATIONS[feature]):
                source[key] = (feature, i)
        columns = [source[key] for keys in PHENOTYPE_VARIATIONS.values() for key in keys]
        # The other phenotypes' weights are constants (cupsize, firmness at 0.5, race 1/3 each): Anny's own.
        mask = torch.eye(len(columns), **kw)
        constant = phenotype_blendshape_weights(
            torch.full((1, len(labels)), 0.5, **kw),
            labels,
            phenotype_model.anchors,
            mask,
            phenotype_model.extrapolate_phenotypes,
        )[0]
        if phenotype_model.extrapolate_phenotypes:
            raise ValueError("AnnySkeleton implements Anny's clamped (not extrapolated) phenotypes")
        position, constants = [], []
        for c, (feature, i) in enumerate(columns):
            if feature in labels:
                position.append(labels.index(feature) * width + i)
            else:
                position.append(len(labels) * width + len(constants))
                constants.append(constant[c])
        position.append(len(labels) * width + len(constants))  # the padding factor, 1
        constants.append(torch.ones((), **kw))
        self.register_buffer("constant_weights", torch.stack(constants)[None], persistent=False)
        remap = torch.tensor(position, **long)
        factors = remap[blendshape_factors.to(device)]  # (C, F): each blend shape's variation columns
        # The gather as a product with a one-hot matrix (V, F * C), factor-major: the same values (one
        # nonzero term per column), and a matrix product as its backward instead of an indexed add.
        onehot = torch.zeros(len(labels) * width + len(constants), factors.numel(), **kw)
        onehot[factors.T.flatten(), torch.arange(factors.numel(), **long)] = 1.0
        self.register_buffer("factor_onehot", onehot, persistent=False)
        self.factor_count = factors.shape[1]
        projection = phenotype_model.phenotype_blendshape_projection
        self.register_buffer("projection", None if projection is None else projection.to(**kw), persistent=False)

    def _orientation_tables(self, model, parents: list[int], point_bones: torch.Tensor) -> list[int]:
        """The rest orientations' refinement and the offsets' frames (`refine`, `local_offsets`);
        returns the oriented bones, in their slots' order."""
        kw = dict(device=model.device, dtype=model.dtype)
        long = dict(device=model.device, dtype=torch.long)
        device = model.device
        # Anny's refinement (`ChildOffsetOrientationRefiner`) turns each bone with
        # children but the root; end bones copy their parent's refined orientation. Only the
        # orientations some offset below uses are computed ("oriented" bones): refined ones (multi-child,
        # then single-child), then unrefined ones (the root, if points rode on it).
        refiner = model.rest_orientation_refiner
        leaf_parent = dict(zip(refiner.leaf_bone_indices.tolist(), refiner.leaf_bone_parent_indices.tolist()))
        source = lambda b: leaf_parent.get(b, b)  # noqa: E731  # whose orientation bone b has
        # Offsets: each bone's head from its parent's in the parent's frame (world axes for the root's
        # children), each point from its bone's head in its bone's; a frame is U_u R_s^T for the
        # reference orientation U of bone u and the rest orientation R of bone s = source(u).
        frame_bones = [None] + [None if p == 0 else p for p in parents[1:]] + point_bones.tolist()
        used = {source(u) for u in frame_bones if u is not None}
        multi = [b for b in refiner.refined_multi_child_bone_indices.tolist() if b in used]
        single = [b for b in refiner.refined_single_child_bone_indices.tolist() if b in used]
        refined = multi + single
        oriented = refined + sorted(used - set(refined))
        self.multi, self.refined_count = len(multi), len(refined)
        slot = {b: i for i, b in enumerate(oriented)}
        frames = sorted({u for u in frame_bones if u is not None}, key=lambda u: (slot[source(u)], u))
        frame_slot = {u: i for i, u in enumerate(frames)}
        self.register_buffer("frame_reference", model.reference_bone_orientations[frames].to(**kw), persistent=False)
        frame_source = [slot[source(u)] for u in frames]
        # Usually each oriented bone gives one frame, its own: then no gather is needed.
        self.frame_source = None if frame_source == list(range(len(oriented))) else frame_source
        if self.frame_source is not None:
            self.register_buffer("frame_source_index", torch.tensor(frame_source, **long), persistent=False)
        self.register_buffer(
            "offset_frame",
            torch.tensor([len(frames) if u is None else frame_slot[u] for u in frame_bones], **long),
            persistent=False,
        )
        head_of = [0] + parents[1:]
        self.register_buffer("offset_head", torch.cat([torch.tensor(head_of, **long), point_bones]), persistent=False)
        # The refinement's heads in one gather: the multi-child bones' children (5 slots each) and
        # heads, then the single-child bones' (only) children and heads.
        children = refiner.bone_children_indices[refined].to(device)
        m = len(multi)
        if not bool((refiner.bone_children_mask[single, 0] == 1).all()):
            raise ValueError("AnnySkeleton expects every single-child bone's child in slot 0")
        heads_of = torch.tensor(refined, **long)
        self.register_buffer(
            "refine_heads",
            torch.cat([children[:m].flatten(), heads_of[:m], children[m:, 0], heads_of[m:]]),
            persistent=False,
        )
        self.refine_split = (5 * m, m, len(single), len(single))
        self.register_buffer("children_mask", refiner.bone_children_mask[multi].to(**kw)[..., None], persistent=False)
        offsets = refiner.bone_children_local_offsets[refined].to(**kw)
        self.register_buffer("children_offsets_t", offsets[:m].transpose(-1, -2), persistent=False)  # (m, 3, 5)
        self.register_buffer("child_offset", offsets[m:, 0, :, None], persistent=False)  # (n - m, 3, 1)

        return oriented

    def _blend_tables(self, model, oriented: list[int]) -> None:
        """Blend shapes of the points, heads and oriented bones' matrices as one matrix (`blend`)."""
        kw = dict(device=model.device, dtype=model.dtype)
        points = model.template_vertices.shape[0]
        self.points = points
        parts = [
            (model.template_vertices, model.blendshapes),
            (model.template_bone_heads, model.bone_heads_blendshapes),
            (model.bone_template_orientation_matrices[oriented], model.bone_orientation_blendshapes[:, oriented]),
        ]
        self.register_buffer("template", torch.cat([t.reshape(-1) for t, _ in parts]).to(**kw), persistent=False)
        self.register_buffer(
            "blendshapes",
            torch.cat([b.reshape(b.shape[0], -1) for _, b in parts], 1).to(**kw),
            persistent=False,
        )
        self.split = (3 * points, 3 * len(model.bone_parents), 9 * len(oriented))

    def _kinematic_tables(
        self, model, parents: list[int], pose_bones: torch.Tensor, point_bones: torch.Tensor, output_bones: torch.Tensor
    ) -> None:
        """Bones by depth (a level's parents all in the level before), pose slots, skinning (`chain`, `skin`)."""
        kw = dict(device=model.device, dtype=model.dtype)
        long = dict(device=model.device, dtype=torch.long)
        device, bones = model.device, len(parents)
        depth = [0] * bones
        for b in range(bones):
            depth[b] = 0 if parents[b] < 0 else depth[parents[b]] + 1
        order = sorted(range(bones), key=lambda b: (depth[b], b))
        if depth.count(0) != 1 or order[0] != 0:
            raise ValueError("AnnySkeleton expects one root, bone 0")
        position = {b: i for i, b in enumerate(order)}
        self.levels = [depth.count(d) for d in range(max(depth) + 1)]
        starts = [sum(self.levels[:d]) for d in range(len(self.levels))]
        for d in range(1, len(self.levels)):
            level = order[starts[d] : starts[d] + self.levels[d]]
            local = [position[parents[b]] - starts[d - 1] for b in level]
            self.register_buffer(f"level_parent{d}", torch.tensor(local, **long), persistent=False)
        self.register_buffer("shift_bones", torch.tensor(order[1:], **long), persistent=False)
        pose_slot = torch.full((bones,), len(pose_bones), **long)
        pose_slot[pose_bones.to(device)] = torch.arange(len(pose_bones), **long)
        self.register_buffer("pose_slot", pose_slot[order], persistent=False)
        self.register_buffer("bottom", torch.tensor([0.0, 0.0, 0.0, 1.0], **kw), persistent=False)
        self.register_buffer("eye3", torch.eye(3, **kw), persistent=False)
        self.register_buffer("skew", torch.tensor(_SKEW, **long), persistent=False)
        # [v]x = v @ skew_map: a product with one +-1 per column, the same bits as the gather.
        signed = torch.cat([torch.eye(3, **kw), -torch.eye(3, **kw), torch.zeros(3, 1, **kw)], 1)
        self.register_buffer("skew_map", signed[:, torch.tensor(_SKEW, **long).flatten()], persistent=False)
        self.register_buffer("diagonal_first", torch.tensor([1, 0, 0], **long), persistent=False)
        self.register_buffer("diagonal_second", torch.tensor([2, 2, 1], **long), persistent=False)
        self.register_buffer("horn", _horn_map().to(device), persistent=False)
        skin_bones = torch.cat([point_bones, output_bones.to(device)]).tolist()
        self.register_buffer("skin_bones", torch.tensor([position[b] for b in skin_bones], **long), persistent=False)
        self.register_buffer(
            "joint_local", torch.tensor([[0.0, 0.0, 0.0, 1.0]] * len(output_bones), **kw), persistent=False
        )

    # ---- shape

    def coefficients(self, phenotypes: torch.Tensor) -> torch.Tensor:
        """Anny's blend-shape coefficients (B, C) of phenotypes (B, 6): each phenotype's linear
        interpolation weights over its anchors (clamped to them, as Anny's
        `linear_interpolation_coefficients`), their products per blend shape, Anny's projection."""
        low, high = self.anchor_low, self.anchor_high
        value = torch.where(phenotypes < low, low, phenotypes)
        value = torch.where(value > high, high, value)
        # searchsorted(..., side="left"), clamped to [1, n - 1]: the number of anchors below the value.
        upper = torch.minimum((self.anchors < value[..., None]).sum(-1).clamp_min(1), self.anchor_last)
        at = torch.stack([upper - 1, upper]) + self.anchor_start
        lo, hi = self.anchors.flatten()[at]
        alpha = (value - lo) / (hi - lo)
        slot = self.anchor_slot
        weights = torch.where(
            slot == (upper - 1)[..., None],
            (1.0 - alpha)[..., None],
            torch.where(slot == upper[..., None], alpha[..., None], torch.zeros_like(alpha)[..., None]),
        )
        variations = torch.cat([weights.flatten(1), self.constant_weights.expand(len(weights), -1)], 1)
        factors = (variations @ self.factor_onehot).unflatten(1, (self.factor_count, -1)).unbind(1)
        # The product over each blend shape's factors, in order (prod's backward is slow with zeros).
        product = factors[0]
        for factor in factors[1:]:
            product = product * factor
        return product if self.projection is None else product @ self.projection

    def blend(self, coefficients: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rest points (B, P, 3), bone heads (B, J, 3), orientation matrices (B, J, 3, 3)."""
        rest = torch.addmm(self.template, coefficients, self.blendshapes)
        points, heads, matrices = rest.split(self.split, 1)
        batch = len(rest)
        return points.view(batch, -1, 3), heads.view(batch, -1, 3), matrices.view(batch, -1, 3, 3)

    def procrustes(self, matrices: torch.Tensor) -> torch.Tensor:
        """Nearest rotations (Anny's "cached" bone orientations, and the refinement's Kabsch fits):
        `roma.special_procrustes`'s, see `_NearestRotation`."""
        return _NearestRotation.apply(matrices, self.horn, self.skew)

    def refine(self, orientations: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
        """Anny's SOMA child-offset refinement of the oriented bones' rest orientations (B, K, 3, 3)."""
        n, m = self.refined_count, self.multi
        refined = orientations if n == orientations.shape[1] else orientations[:, :n]
        refined_multi, refined_single = refined.split([m, n - m], 1)
        children, parents, child, parent = heads[:, self.refine_heads].split(self.refine_split, 1)
        # Multi-child bones: Kabsch on the children's offsets, plus the first two children's normal.
        target = (children.unflatten(1, (m, -1)) - parents[:, :, None]) * self.children_mask  # (B, m, 5, 3)
        source_t = refined_multi @ self.children_offsets_t  # (B, m, 3, 5): columns are the source offsets
        first = torch.stack([target[:, :, 0], source_t[..., 0]], 2)
        normal = torch.linalg.cross(first, torch.stack([target[:, :, 1], source_t[..., 1]], 2), dim=-1)
        lengths = torch.linalg.norm(torch.cat([first, normal], 2), dim=-1, keepdim=True)  # (B, m, 4, 1)
        virtual = normal * lengths[:, :, :2] / (lengths[:, :, 2:] + 1e-8)
        valid = (lengths[:, :, 2:, 0] > 1e-9).all(-1)[..., None, None]
        cross_cov = (source_t @ target).transpose(-1, -2)
        cross_cov = cross_cov + torch.where(
            valid, virtual[:, :, 0, :, None] * virtual[:, :, 1, None, :], torch.zeros_like(cross_cov)
        )
        multi = self.procrustes(cross_cov)
        # Single-child bones: the shortest arc from the source offset to the target one.
        single = self._shortest_arc(child - parent, (refined_single @ self.child_offset)[..., 0])
        aligned = torch.cat([multi, single], 1) @ refined
        return aligned if n == orientations.shape[1] else torch.cat([aligned, orientations[:, n:]], 1)

    def _shortest_arc(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Anny's `_shortest_arc_rotation(target, source)`: I + [v]x + [v]x^2 / (1 + cos) with v the
        cross product of the unit vectors, [v]x^2 = v v^T - |v|^2 I; the rare antiparallel pairs take
        Anny's own function, pair by pair, so no other row's bits depend on them."""
        t = target / (target * target).sum(-1, keepdim=True).sqrt().clamp(min=1e-8)
        s = source / (source * source).sum(-1, keepdim=True).sqrt().clamp(min=1e-8)
        cos = (t * s).sum(-1, keepdim=True).clamp(-1.0, 1.0)
        v = torch.linalg.cross(s, t, dim=-1)
        square = v[..., :, None] * v[..., None, :] - (v * v).sum(-1)[..., None, None] * self.eye3
        # The clamp changes only the antiparallel pairs (replaced below) and keeps their gradient finite.
        arc = self.eye3 + self._skew(v) + square / (1.0 + cos[..., None]).clamp_min(_ANTIPARALLEL)
        opposite = cos[..., None] < -1.0 + _ANTIPARALLEL
        if bool(opposite.any()):
            from anny.models.orientation_refinement import _shortest_arc_rotation

            arc = torch.where(opposite, _shortest_arc_rotation(target, source), arc)
        return arc

    def local_offsets(self, points: torch.Tensor, heads: torch.Tensor, orientations: torch.Tensor) -> torch.Tensor:
        """(B, J + P, 3): each bone's head from its parent's, in its parent's reference frame
        (U_p R_p^T (h_c - h_p), world axes for the root's children), then each point from its
        bone's head in that bone's (U_b R_b^T (r - h_b)); R the refined orientations of the
        oriented bones, an end bone's its parent's."""
        if self.frame_source is not None:
            orientations = orientations[:, self.frame_source_index]
        frames = self.frame_reference @ orientations.transpose(-1, -2)
        frames = torch.cat([frames, self.eye3.expand(len(frames), 1, 3, 3)], 1)
        offsets = torch.cat([heads, points], 1) - heads[:, self.offset_head]
        return (frames[:, self.offset_frame] @ offsets[..., None])[..., 0]

    def rest(self, phenotypes: torch.Tensor) -> torch.Tensor:
        """The shape's rest quantities for `pose`: the offsets of `local_offsets` (B, J + P, 3)."""
        points, heads, matrices = self.blend(self.coefficients(phenotypes))
        orientations = self.refine(self.procrustes(matrices), heads)
        return self.local_offsets(points, heads, orientations)

    # ---- pose

    def chain(self, pose: torch.Tensor, transl: torch.Tensor | None, offsets: torch.Tensor) -> torch.Tensor:
        """Posed affine maps [E_c | w_c] of every bone (B, J, 4, 4), bones by depth (root first)."""
        batch, bones = len(pose), len(self.pose_slot)
        rot = self.rotations(pose)
        rot = torch.cat([rot, self.eye3.expand(batch, 1, 3, 3)], 1)[:, self.pose_slot]
        root = torch.zeros_like(offsets[:, :1]) if transl is None else transl[:, None]
        shift = torch.cat([root, offsets[:, self.shift_bones]], 1)
        maps = torch.cat([rot, shift[..., None]], -1)
        maps = torch.cat([maps, self.bottom.expand(batch, bones, 1, 4)], -2)
        levels = maps.split(self.levels, 1)
        posed = [levels[0]]
        for d in range(1, len(levels)):
            posed.append(posed[-1].index_select(1, getattr(self, f"level_parent{d}")) @ levels[d])
        return torch.cat(posed, 1)

    def rotations(self, rotvec: torch.Tensor) -> torch.Tensor:
        """Rotation matrices (..., 3, 3) of axis-angles (..., 3): `roma.rotvec_to_rotmat`'s formula
        (Rodrigues with the diagonal as 1 - (1 - cos) (k_j^2 + k_k^2), first order below 1e-6 rad),
        term by term, in fewer ops."""
        theta = torch.linalg.vector_norm(rotvec, dim=-1)
        axis = rotvec / theta[..., None].clamp_min(1e-6)
        sin, one_minus_cos = torch.sin(theta)[..., None], 1 - torch.cos(theta)[..., None, None]
        outer = axis[..., :, None] * axis[..., None, :] * one_minus_cos
        square = outer.diagonal(dim1=-2, dim2=-1)
        diagonal = 1 - square[..., self.diagonal_first] - square[..., self.diagonal_second]
        rodrigues = torch.diagonal_scatter(outer + self._skew(axis * sin), diagonal, dim1=-2, dim2=-1)
        first_order = self.eye3 + self._skew(rotvec)
        return torch.where((theta < 1e-6)[..., None, None], first_order, rodrigues)

    def _skew(self, v: torch.Tensor) -> torch.Tensor:
        """[v]x (..., 3, 3) of vectors (..., 3)."""
        return (v @ self.skew_map).unflatten(-1, (3, 3))

    def skin(self, maps: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed points (B, P, 3) and output joints (B, J_out, 3)."""
        bones = len(self.pose_slot)
        local = offsets[:, bones:]
        local = torch.cat([local, torch.ones_like(local[..., :1])], -1)
        local = torch.cat([local, self.joint_local.expand(len(local), -1, -1)], 1)
        posed = (maps[:, self.skin_bones, :3] @ local[..., None])[..., 0]
        return posed[:, : self.points], posed[:, self.points :]

    def pose(
        self, pose: torch.Tensor, transl: torch.Tensor | None, offsets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed points and joints for SMPL-X-order axis-angles `pose` (B, 55, 3) and `transl`."""
        return self.skin(self.chain(pose, transl, offsets), offsets)


def _check_rig(model) -> None:
    """Refuse an Anny rig `AnnySkeleton` does not implement, in one line."""
    kw = dict(device=model.device, dtype=model.dtype)
    if model.bone_orientation != "cached" or model.pose_parameterization != "local-ref":
        raise ValueError("AnnySkeleton needs Anny's 'cached' bone orientations and 'local-ref' poses")
    if model.root_identity_orientation or model.rest_orientation_refiner is None:
        raise ValueError("AnnySkeleton expects the SOMA rig (no root identity, a child-offset refiner)")
    ref = model.reference_bone_orientations
    if ref is None or not torch.equal(ref[0], torch.eye(3, **kw)):
        raise ValueError("AnnySkeleton expects the root's reference orientation to be the identity")
    if model.vertex_bone_indices.shape[1] != 1:
        raise ValueError("AnnySkeleton expects every point on one bone")


def _horn_map() -> torch.Tensor:
    """(9, 16) float64: row 3 i + j is the symmetric 4x4 matrix E_ij with R(q)_ij = q^T E_ij q, R(q)
    the rotation of the quaternion q = (x, y, z, w) written as a homogeneous quadratic. Then
    tr(R^T M) = q^T N(M) q with N(M) = sum_ij M_ij E_ij (Horn 1987)."""

    def rotation(q: torch.Tensor) -> torch.Tensor:
        x, y, z, w = q
        return torch.stack(
            [
                w * w + x * x - y * y - z * z,
                2 * (x * y - w * z),
                2 * (x * z + w * y),
                2 * (x * y + w * z),
                w * w - x * x + y * y - z * z,
                2 * (y * z - w * x),
                2 * (x * z - w * y),
                2 * (y * z + w * x),
                w * w - x * x - y * y + z * z,
            ]
        )

    q = torch.ones(4, dtype=torch.float64, device="cpu")
    return torch.stack([0.5 * torch.func.hessian(lambda v, k=k: rotation(v)[k])(q) for k in range(9)]).flatten(1)


class _NearestRotation(torch.autograd.Function):
    """The rotation R maximising tr(R^T M) for each 3x3 M, i.e. `roma.special_procrustes(M)` (same
    values to ~1e-14 and the same damped derivative), in float64: Newton's scaled polar iteration
    (`_polar_newton`, ~7 elementwise ops a step, ~0.5 us a matrix at 256 rows) and, where it does not
    converge (det M <= 0, near-singular M; decided per matrix), R from the top eigenvector of Horn's
    4x4 matrix N(M) (`_horn_rotation`: one `eigh`, ~1.6 us a matrix; roma's closed form takes ~60
    small ops), and a backward in a few batched ops. With S = R^T M (symmetric at the optimum) and Y = tr(S) I - S,
    whose eigenvalues are the pairwise sums t of M's signed singular values, dR = R [w]x with
    Y w = vee(R^T dM - dM^T R); so grad_M = R [z]x with z = Y^-1 vee(R^T G - G^T R), each 1 / t
    damped to t / (t^2 + eps^2) as roma does (eps = its gradient_eps, 1e-5)."""

    @staticmethod
    def forward(ctx, matrices: torch.Tensor, horn: torch.Tensor, skew: torch.Tensor) -> torch.Tensor:
        m = matrices.double()
        rotations, converged = _polar_newton(m)
        if not bool(converged.all()):
            # Chosen per matrix; the fallback runs on fixed pieces of the call's rows (`_horn_in_pieces`),
            # so a matrix's bits depend neither on which other matrices fell back nor on the call's size.
            rotations = torch.where(converged[..., None, None], rotations, _horn_in_pieces(m, horn, converged))
        ctx.save_for_backward(rotations, m, skew)
        return rotations.to(matrices.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        rotations, m, skew = ctx.saved_tensors
        rt = rotations.transpose(-1, -2)
        a = rt @ grad.double()
        a = a - a.transpose(-1, -2)
        g = torch.stack([a[..., 2, 1], a[..., 0, 2], a[..., 1, 0]], -1)[..., None]
        s = rt @ m
        s = 0.5 * (s + s.transpose(-1, -2))
        eye = torch.eye(3, dtype=s.dtype, device=s.device)
        y = s.diagonal(dim1=-2, dim2=-1).sum(-1)[..., None, None] * eye - s
        z = y @ torch.linalg.solve_ex(y @ y + _GRADIENT_EPS**2 * eye, g, check_errors=False)[0]
        z = torch.cat([z[..., 0], -z[..., 0], torch.zeros_like(z[..., :1, 0])], -1)[..., skew]
        return (rotations @ z).to(grad.dtype), None, None


_HORN_ROWS = 16  # rows (first dimension) per `_horn_rotation` call of the fallback


def _horn_in_pieces(m: torch.Tensor, horn: torch.Tensor, converged: torch.Tensor) -> torch.Tensor:
    """`_horn_rotation(m)` where a row (m's first dimension) holds an unconverged matrix, evaluated in
    pieces of `_HORN_ROWS` rows (the last padded with copies of its first row): `eigh` and the
    products round a matrix differently with the number of matrices in a call, so this keeps a
    row's fallback the same in a call of any size (the fitter's calls are multiples of 16 rows).
    Rows of pieces with no unconverged matrix are left as m (the caller keeps their Newton result)."""
    if m.dim() < 3:
        return _horn_rotation(m, horn)
    out = m.clone()
    need = ~converged.reshape(len(m), -1).all(1)
    for start in range(0, len(m), _HORN_ROWS):
        if not bool(need[start : start + _HORN_ROWS].any()):
            continue
        piece = m[start : start + _HORN_ROWS]
        rows = len(piece)
        if rows < _HORN_ROWS:
            piece = torch.cat([piece, piece[:1].expand(_HORN_ROWS - rows, *piece.shape[1:])])
        out[start : start + rows] = _horn_rotation(piece, horn)[:rows]
    return out


def _horn_rotation(m: torch.Tensor, horn: torch.Tensor) -> torch.Tensor:
    """`roma.special_procrustes(m)` (float64, (..., 3, 3)) from the top eigenvector of Horn's 4x4
    matrix N(m) (`torch.linalg.eigh`): right for any m, ~1.5 us a matrix on a CPU."""
    n = (m.flatten(-2) @ horn).unflatten(-1, (4, 4))
    q = torch.linalg.eigh(n)[1][..., -1]
    return ((q[..., :, None] * q[..., None, :]).flatten(-2) @ horn.T).unflatten(-1, (3, 3))


def _polar_newton(m: torch.Tensor, iterations: int = _NEWTON_ITERATIONS) -> tuple[torch.Tensor, torch.Tensor]:
    """The orthogonal polar factor of each float64 3x3 m by Newton's iteration with determinant
    scaling (Higham 1986): X <- (g X + X^-T / g) / 2, g = |det X|^(-1/3), X^-T = cof(X) / det X (the
    cofactors as cross products of rows), a fixed number of elementwise steps. Returns the factors
    and, per matrix, whether it is `roma.special_procrustes(m)`: det m > 0 (else the nearest rotation
    is not the polar factor) and the last step moved no entry by `_NEWTON_TOLERANCE` or more (the
    iteration is then in its quadratic phase, and the factor right to rounding). The bone
    orientation matrices (condition numbers up to ~130) and the refinement's Kabsch matrices converge
    in 6 steps; near-singular or reflected ones, and anything non-finite, do not pass."""
    x = m
    first = None
    cyclic = torch.arange(5, device=m.device) % 3
    for _ in range(iterations):
        previous = x
        rows = x.index_select(-2, cyclic)  # rows 0, 1, 2, 0, 1
        cofactors = torch.linalg.cross(rows[..., 1:4, :], rows[..., 2:5, :], dim=-1)
        det = torch.linalg.vecdot(x[..., 0, :], cofactors[..., 0, :])
        first = det if first is None else first
        gamma = det.abs().pow(-1.0 / 3.0)
        x = torch.addcmul((0.5 * gamma)[..., None, None] * x, (0.5 / (gamma * det))[..., None, None], cofactors)
    step = (x - previous).abs().amax((-1, -2))
    return x, (step < _NEWTON_TOLERANCE) & (first > 0)


# roma.special_procrustes' default damping of its derivative.
_GRADIENT_EPS = 1e-5

# Entries of [v, -v, 0] forming the skew matrix [v]x.
_SKEW = ((6, 5, 1), (2, 6, 3), (4, 0, 6))
