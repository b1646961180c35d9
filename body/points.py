"""Named surface/joint points as fixed linear combinations of vertices and joints.

Every keypoint a detector reports (a nose, a heel, a knuckle, a mouth corner) is
placed on a body model as sum_v a_v * vertex_v + sum_j b_j * joint_j with weights
fixed per model. A `PointTable` holds those definitions by name and assembles the
dense (K, V) / (K, J) matrices of a keypoint set once, so evaluating a set is two
small matrix products that stay differentiable.

Skinning is linear in the rest points, so a point's vertex part can also be
skinned at the cost of the skeleton: `PointTable.bound_to_bones` splits it into
one rest point per skinning bone (`BoneBinding`), which a back end poses with
that bone alone; the point is then their weighted sum, equal to the skinned
vertices' combination up to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from body.keypoint_sets import keypoint_names


@dataclass(frozen=True)
class PointDef:
    """One point: vertex weights and joint weights (each index -> weight)."""

    vertices: dict[int, float] = field(default_factory=dict)
    joints: dict[int, float] = field(default_factory=dict)

    @staticmethod
    def joint(index: int) -> "PointDef":
        return PointDef(joints={index: 1.0})

    @staticmethod
    def vertex(index: int) -> "PointDef":
        return PointDef(vertices={index: 1.0})

    @staticmethod
    def blend(*parts: tuple["PointDef", float]) -> "PointDef":
        """Weighted sum of other points (e.g. a midpoint)."""
        verts: dict[int, float] = {}
        joints: dict[int, float] = {}
        for point, w in parts:
            for i, a in point.vertices.items():
                verts[i] = verts.get(i, 0.0) + w * a
            for i, a in point.joints.items():
                joints[i] = joints.get(i, 0.0) + w * a
        return PointDef(verts, joints)


@dataclass(frozen=True)
class BoneBinding:
    """The vertex parts of a table's points as per-bone rest points ("pairs").

    Pair p rides rigidly on bone `bones[p]`; its rest point is `mix[p] @ X[vertices]`
    for any per-vertex rest quantity X (positions, blend shapes, pose correctives).
    `points` is the same table over the pairs: a point's vertex part weighs each of
    its pairs by the point's skinning weight on that pair's bone.
    """

    bones: torch.Tensor  # (P,) long
    vertices: torch.Tensor  # (N,) long: the mesh vertices the pairs mix
    mix: torch.Tensor  # (P, N) float64, rows sum to 1
    points: "PointTable"


class PointTable:
    """Point definitions of one body model, with cached per-set matrices."""

    def __init__(self, points: dict[str, PointDef], num_vertices: int, num_joints: int) -> None:
        self.points = points
        self.num_vertices = num_vertices
        self.num_joints = num_joints
        self._cache: dict[tuple[str, torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def vertex_support(self) -> list[int]:
        """Sorted ids of every vertex some point uses."""
        return sorted({v for p in self.points.values() for v in p.vertices})

    def restricted_to(self, vertex_ids: list[int]) -> "PointTable":
        """The same points over a vertex subset (vertex i of the subset = vertex_ids[i])."""
        new = {v: i for i, v in enumerate(vertex_ids)}
        points = {
            n: PointDef({new[v]: a for v, a in p.vertices.items()}, dict(p.joints)) for n, p in self.points.items()
        }
        return PointTable(points, len(vertex_ids), self.num_joints)

    def bound_to_bones(self, skin_weights: torch.Tensor) -> BoneBinding:
        """Split every point's vertex part by the bones that skin it (`skin_weights` (V, bones)).
        Point k's vertex part sum_v a_kv x_v, skinned, is sum_b m_kb T_b(r_kb) with mass
        m_kb = sum_v a_kv w_vb and rest point r_kb = sum_v a_kv w_vb x_v / m_kb: one pair per
        (vertex part, bone) with m_kb > 0. Raises ValueError for a negative vertex weight
        (the rest point would not be a weighted mean of vertices)."""
        support = self.vertex_support()
        weights = skin_weights.detach().to("cpu", torch.float64)[support]
        col = {v: i for i, v in enumerate(support)}
        pairs: dict[tuple, int] = {}  # (vertex part, bone) -> pair index
        rows: list[torch.Tensor] = []
        bones: list[int] = []
        points: dict[str, PointDef] = {}
        for name, point in self.points.items():
            if any(a < 0 for a in point.vertices.values()):
                raise ValueError(f"point {name!r} has a negative vertex weight; bound_to_bones needs weights >= 0")
            a = torch.zeros(len(support), dtype=torch.float64, device=weights.device)
            for v, w in point.vertices.items():
                a[col[v]] = w
            mass = a @ weights  # (bones,)
            part = tuple(sorted(point.vertices.items()))
            on: dict[int, float] = {}
            for b in mass.nonzero().flatten().tolist():
                if (part, b) not in pairs:
                    pairs[part, b] = len(rows)
                    rows.append(a * weights[:, b] / mass[b])
                    bones.append(b)
                on[pairs[part, b]] = float(mass[b])
            points[name] = PointDef(on, dict(point.joints))
        mix = torch.stack(rows) if rows else torch.zeros(0, len(support), dtype=torch.float64, device=weights.device)
        return BoneBinding(
            torch.tensor(bones, dtype=torch.long, device=weights.device),
            torch.tensor(support, dtype=torch.long, device=weights.device),
            mix,
            PointTable(points, len(rows), self.num_joints),
        )

    def supported_sets(self) -> list[str]:
        """Keypoint sets of which this model has at least half the points."""
        from body.keypoint_sets import KEYPOINT_SETS

        return [n for n, names in KEYPOINT_SETS.items() if sum(p in self.points for p in names) * 2 >= len(names)]

    def mask(self, name: str) -> torch.Tensor:
        """(K,) bool on the CPU: which points of the set exist on this model."""
        return torch.tensor([p in self.points for p in keypoint_names(name)], device="cpu")

    def matrices(
        self, name: str, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(vertex_idx (N,), vertex weights (K, N), joint weights (K, J)) for a set."""
        key = (name, device, dtype)
        if key not in self._cache:
            names = keypoint_names(name)
            if name not in self.supported_sets():
                raise KeyError(
                    f"keypoint set {name!r} is not available on this model; available: {self.supported_sets()}"
                )
            used = sorted({v for p in names if p in self.points for v in self.points[p].vertices})
            col = {v: i for i, v in enumerate(used)}
            # Filled entry by entry on the CPU, then moved.
            wv = torch.zeros(len(names), len(used), dtype=dtype, device="cpu")
            wj = torch.zeros(len(names), self.num_joints, dtype=dtype, device="cpu")
            for k, p in enumerate(names):
                point = self.points.get(p)
                if point is None:
                    continue
                for v, a in point.vertices.items():
                    wv[k, col[v]] += a
                for j, a in point.joints.items():
                    wj[k, j] += a
            self._cache[key] = (torch.tensor(used, dtype=torch.long, device=device), wv.to(device), wj.to(device))
        return self._cache[key]

    def evaluate(self, name: str, vertices: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        """(B, K, 3) positions of the set's points (zeros where a point is missing)."""
        idx, wv, wj = self.matrices(name, vertices.device, vertices.dtype)
        out = torch.einsum("kj,bjd->bkd", wj, joints)
        if idx.numel():
            out = out + torch.einsum("kn,bnd->bkd", wv, vertices[:, idx])
        return out
