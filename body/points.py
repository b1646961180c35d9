"""Named surface/joint points as fixed linear combinations of vertices and joints.

Every keypoint a detector reports (a nose, a heel, a knuckle, a mouth corner) is
placed on a body model as sum_v a_v * vertex_v + sum_j b_j * joint_j with weights
fixed per model. A `PointTable` holds those definitions by name and assembles the
dense (K, V) / (K, J) matrices of a keypoint set once, so evaluating a set is two
small matrix products that stay differentiable.
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

    def supported_sets(self) -> list[str]:
        """Keypoint sets of which this model has at least half the points."""
        from body.keypoint_sets import KEYPOINT_SETS

        return [n for n, names in KEYPOINT_SETS.items() if sum(p in self.points for p in names) * 2 >= len(names)]

    def mask(self, name: str) -> torch.Tensor:
        """(K,) bool: which points of the set exist on this model."""
        return torch.tensor([p in self.points for p in keypoint_names(name)])

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
            wv = torch.zeros(len(names), len(used), dtype=dtype)
            wj = torch.zeros(len(names), self.num_joints, dtype=dtype)
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
