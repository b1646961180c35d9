"""A fitting problem as tensors: the targets of B rows x T frames (images: T = 1; video windows: T > 1)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from body.base import BodyModel
from fitting.targets import BODY, FrameTargets, Layout


@dataclass
class Problem:
    """Targets of B rows x T frames; `layout` lists the keypoint sets concatenated along K."""

    xy: torch.Tensor  # (B, T, K, 2)
    conf: torch.Tensor  # (B, T, K) detection confidence (0: missing, or not on this model)
    weight: torch.Tensor  # (B, T, K) confidence x per-joint weight
    scale: torch.Tensor  # (B, T) px -> reference units
    focal: torch.Tensor  # (B, T, 2)
    center: torch.Tensor  # (B, T, 2)
    link: torch.Tensor  # (B, T-1) temporal link weights between consecutive frames
    frozen: torch.Tensor  # (B, T) bool: frames held at their start values (video overlap, padding)
    layout: Layout

    @property
    def rows(self) -> int:
        return self.scale.shape[0]

    @property
    def frames(self) -> int:
        return self.scale.shape[1]

    def take(self, rows: torch.Tensor) -> "Problem":
        """The problem of a subset (or repetition) of rows."""
        return replace(
            self,
            **{
                k: getattr(self, k)[rows]
                for k in ("xy", "conf", "weight", "scale", "focal", "center", "link", "frozen")
            },
        )

    def body_conf(self) -> torch.Tensor:
        """(B, T, K) confidences of the body points only (hands and face 0)."""
        return self.conf * (self.layout.part == BODY).to(self.conf.dtype)


def build_problem(
    rows: list[list[FrameTargets | None]],
    layout: Layout,
    model: BodyModel,
    reference_size: float,
    frame_index: list[list[int]] | None = None,
    max_gap: int = 1,
) -> Problem:
    """Tensors for B rows of T frames (None pads a short row: all weights 0, frozen).

    Residuals are measured on the person scaled to a box diagonal of `reference_size`;
    `frame_index` (video) links consecutive frames at most `max_gap` apart, with weight 1/gap^2.
    """
    b, t, k = len(rows), max(len(r) for r in rows), len(layout.names)
    xy = np.zeros((b, t, k, 2), np.float32)
    conf = np.zeros((b, t, k), np.float32)
    weight = np.zeros((b, t, k), np.float32)
    focal = np.ones((b, t, 2), np.float32)
    center = np.zeros((b, t, 2), np.float32)
    frozen = np.ones((b, t), bool)
    slices = layout.slices()
    for i, row in enumerate(rows):
        for j, frame in enumerate(row):
            if frame is None:
                continue
            frozen[i, j] = False
            focal[i, j], center[i, j] = frame.focal, frame.center
            for s, sl in slices.items():
                if s not in frame.points:
                    continue
                pts, w = frame.points[s]
                mask = model.points.mask(s).numpy() & np.isfinite(pts).all(1)
                xy[i, j, sl] = np.where(mask[:, None], pts[:, :2], 0)
                c = np.where(mask, np.clip(pts[:, 2], 0, 1), 0)
                conf[i, j, sl] = c
                weight[i, j, sl] = c * w
    is_body = (layout.part == BODY).cpu().numpy()
    scale = np.ones((b, t), np.float32)
    for i in range(b):
        for j in range(t):
            seen = (conf[i, j] > 0) & is_body
            if seen.sum() >= 2:
                p = xy[i, j, seen]
                diag = float(np.linalg.norm(p.max(0) - p.min(0)))
                scale[i, j] = reference_size / max(diag, 1.0)
    link = np.zeros((b, max(t - 1, 0)), np.float32)
    if frame_index is not None:
        for i, idx in enumerate(frame_index):
            gaps = np.diff(np.asarray(idx, np.float64))
            ok = (gaps > 0) & (gaps <= max_gap)
            link[i, : len(gaps)] = np.where(ok, 1.0 / np.maximum(gaps, 1) ** 2, 0)
    as_t = lambda a: torch.as_tensor(a, device=model.device).to(model.dtype)  # noqa: E731
    return Problem(
        as_t(xy),
        as_t(conf),
        as_t(weight),
        as_t(scale),
        as_t(focal),
        as_t(center),
        as_t(link),
        torch.as_tensor(frozen, device=model.device),
        layout,
    )
