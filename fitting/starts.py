"""Typed start records: a hypothesis' `Start` of some frames, and a run's `Anchor`, what terms
holding a fit near its start read."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Start:
    """The start a hypothesis gives M frames: `values` (M, ...) of some variables
    (`fitting.variables`; the others come from the default start), and `body_pose` (M, 21, 3),
    or (M, T, 21, 3) per frame, the body pose the start stands for where the pose space's
    variable only approximates it (the initialiser's reading: VPoser's encoder lands 1-3 cm of
    joint distance from it); None: the pose the variable decodes to."""

    values: dict[str, torch.Tensor]
    body_pose: torch.Tensor | None = None


@dataclass(frozen=True)
class Anchor:
    """What terms keeping a fit near its start read: the start `variables` (B, T, ...; per-row
    ones (B, S)) and `skeleton` (B, T, 22, 3), the skeleton of the body each row starts as
    (`fitting.terms.body_skeleton`; from the start's `body_pose` where it gives one)."""

    variables: dict[str, torch.Tensor]
    skeleton: torch.Tensor

    def take(self, rows: torch.Tensor) -> "Anchor":
        """The anchor of some rows."""
        return Anchor({k: x[rows] for k, x in self.variables.items()}, self.skeleton[rows])
