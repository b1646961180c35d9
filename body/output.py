"""The result of a body model's forward pass, the same for every back end."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from body.points import PointTable


@dataclass
class BodyOutput:
    """Posed body: vertices (B, V, 3), joints (B, 55, 3) in SMPL-X joint order.

    `keypoints(name)` gives a named detector keypoint set (see
    `body.keypoint_sets`) as (B, K, 3); `keypoint_mask(name)` says which exist.
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    points: PointTable

    def keypoints(self, name: str) -> torch.Tensor:
        return self.points.evaluate(name, self.vertices, self.joints)

    def keypoint_mask(self, name: str) -> torch.Tensor:
        return self.points.mask(name)
