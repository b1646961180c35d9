"""A temporal 2D->3D lifter: a person's 2D keypoints over a window of frames -> every frame's body.

Each frame is first read by the single-frame initialiser (`prior.initialiser.model`, frozen, its
regressed answer): the same inputs (`features`: normalised camera coordinates, the box of the
visible points, confidences, 0 for missing). Its rotations (6D) and shape, with the frame's
features, enter a stack of dilated temporal convolutions (VideoPose3D, Pavllo et al. 2019: kernel 3,
dilations 1, 3, 9, 27, a receptive field of 81 frames, centred; or ending at the frame in the
online, causal mode) that corrects them from the neighbouring frames: the output layer starts at
zero, so an untrained lifter is the initialiser. Per frame it gives the 22 rotations (camera-frame
global orientation, then the 21 body joints, 6D), a shape (averaged over the window by `lift`), the
pelvis's image position relative to the points' box (`root_xy`: (pelvis - box centre) / box size)
and log(depth * box size): with the box size of the frame this gives the pelvis depth in metres for
a typical body, and its ratio to the first frame's whatever the body's size. Training:
`python -m prior.initialiser.temporal_train` (synthetic videos of the training actors' mocap sequences
on Anny; `prior.initialiser.temporal_data`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from body.keypoint_sets import keypoint_names
from body.rotations import gaussian_smooth, matrix_to_axis_angle, smooth_rotations
from body.skeleton import NUM_BODY_JOINTS
from configs.files import atomic_path
from prior.initialiser.model import NUM_FEATURES, NUM_SHAPE, Initialiser, features, gather_points
from prior.vposer.checkpoint import CHECKPOINTS, load_strictly, read_formatted
from prior.vposer.model import Rot6dToMatrix

DEFAULT_CHECKPOINT = CHECKPOINTS / "temporal_lifter_default.pt"
FORMAT = "bodyfit-temporal-lifter-1"
NUM_ROT6D = 6 * (1 + NUM_BODY_JOINTS)
# Output channels per frame: rotations (6D), shape, root_xy (2), log(depth * box size).
OUT_ROT, OUT_SHAPE = slice(0, NUM_ROT6D), slice(NUM_ROT6D, NUM_ROT6D + NUM_SHAPE)
OUT_XY, OUT_DEPTH = slice(NUM_ROT6D + NUM_SHAPE, NUM_ROT6D + NUM_SHAPE + 2), NUM_ROT6D + NUM_SHAPE + 2
NUM_OUT = NUM_ROT6D + NUM_SHAPE + 3
BOX_SIZE = -1  # the features' last entry: the visible points' box size (normalised camera units)
BOX_MID = slice(-3, -1)  # and the entries before it: the box centre


def matrix_to_rot6d(rot: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, row-major (the inverse of Rot6dToMatrix)."""
    return rot[..., :2].flatten(-2)


def receptive_field(dilations: Sequence[int]) -> int:
    """Input frames per output frame of a first kernel-3 layer and kernel-3 layers of these dilations."""
    return 1 + 2 * (1 + sum(dilations))


@dataclass
class Output:
    """Per window (B) and output frame (T): rotations (B, T, 22, 3, 3), the global orientation
    (camera frame) first; shape (B, T, 6); root_xy (B, T, 2); log_depth_size (B, T)."""

    rotations: torch.Tensor
    shape: torch.Tensor
    root_xy: torch.Tensor
    log_depth_size: torch.Tensor


class TemporalLifter(nn.Module):
    """Dilated temporal convolutions over the frozen single-frame initialiser's per-frame reading."""

    def __init__(
        self,
        initialiser: Initialiser,
        width: int = 256,
        dilations: Sequence[int] = (3, 9, 27),
        dropout: float = 0.1,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.width, self.dilations, self.dropout, self.causal = width, tuple(dilations), dropout, causal
        self.initialiser = initialiser.eval().requires_grad_(False)
        self.expand = nn.Sequential(
            nn.Conv1d(NUM_FEATURES + NUM_ROT6D + NUM_SHAPE, width, 3),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(width, width, 3, dilation=d),
                nn.BatchNorm1d(width),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Conv1d(width, width, 1),
                nn.BatchNorm1d(width),
                nn.ReLU(),
                nn.Dropout(dropout),
            )
            for d in self.dilations
        )
        self.out = nn.Conv1d(width, NUM_OUT, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.to_matrix = Rot6dToMatrix()

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.dilations)

    def train(self, mode: bool = True) -> "TemporalLifter":
        super().train(mode)
        self.initialiser.eval()  # frozen: its batch norms keep their statistics
        return self

    def _context(self, reach: int) -> slice:
        """Input frames aligned with the outputs of a layer that reaches `reach` frames each side."""
        return slice(2 * reach, None) if self.causal else slice(reach, -reach)

    def forward(self, feats: torch.Tensor) -> Output:
        """Features (B, T, NUM_FEATURES), T >= receptive_field -> outputs for T - receptive_field + 1
        frames: the centre ones (frames receptive_field // 2 ... T - 1 - receptive_field // 2), or in
        causal mode the last ones (each from itself and the receptive_field - 1 frames before it)."""
        b, t, _ = feats.shape
        if t < self.receptive_field:
            raise ValueError(f"the lifter needs at least {self.receptive_field} frames per window, got {t}")
        with torch.no_grad():
            rot, shape, _ = self.initialiser(feats.flatten(0, 1))
        base = torch.cat([matrix_to_rot6d(rot[:, 0]).flatten(1), shape], 1).unflatten(0, (b, t))
        x = torch.cat([feats, base], -1).transpose(1, 2)
        h = self.expand(x)
        for d, block in zip(self.dilations, self.blocks):
            h = h[..., self._context(d)] + block(h)
        out = self.out(h).transpose(1, 2)  # (B, T', NUM_OUT)
        kept = base[:, self._context(self.receptive_field // 2)]
        n = out.shape[1]
        rot6d = kept[..., :NUM_ROT6D] + out[..., OUT_ROT]  # the initialiser's reading, corrected
        rotations = self.to_matrix(rot6d.flatten(0, 1)).unflatten(0, (b, n))
        return Output(rotations, kept[..., NUM_ROT6D:] + out[..., OUT_SHAPE], out[..., OUT_XY], out[..., OUT_DEPTH])


@dataclass
class Lift:
    """One person's frames (T): global orientation (T, 3) axis-angle in the camera frame (x right,
    y down, z forward), body pose (T, 21, 3), one shape (6,) for the window (Anny's unconstrained
    phenotypes), the pelvis depth relative to the first frame's (T,), the pelvis depth (T,) in
    metres for a typical adult (scale it by the body's size), and the pelvis's image position (T, 2)
    in pixels."""

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    shape: torch.Tensor
    depth_ratio: torch.Tensor
    depth: torch.Tensor
    root_px: torch.Tensor


def _fill_gaps(values: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """(T, ...) values with the rows where `known` is False linearly interpolated from the known
    ones (held constant beyond the first and last); all-unknown rows are left as they are."""
    idx = known.nonzero().flatten()
    if len(idx) == 0 or len(idx) == len(values):
        return values
    t = torch.arange(len(values), dtype=values.dtype)
    right = torch.searchsorted(idx, torch.arange(len(values))).clamp(1, len(idx) - 1)
    left = right - 1
    t0, t1 = idx[left].to(values.dtype), idx[right].to(values.dtype)
    w = ((t - t0) / (t1 - t0).clamp(min=1)).clamp(0, 1)
    w = w.reshape(-1, *[1] * (values.dim() - 1))
    return values[idx[left]] * (1 - w) + values[idx[right]] * w


def _per_frame(
    value: float | Sequence[float] | torch.Tensor, frames: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """(frames, 2) from one value, an (x, y) pair, or one pair per frame."""
    v = torch.as_tensor(value, dtype=dtype, device=device)
    v = v.reshape(1).expand(2) if v.numel() == 1 else v
    if v.numel() not in (2, 2 * frames):
        raise ValueError(f"expected one value, a pair or {frames} pairs, got shape {tuple(v.shape)}")
    return v.reshape(-1, 2).expand(frames, 2)


@torch.no_grad()
def lift(
    model: TemporalLifter,
    points2d: torch.Tensor,
    confidences: torch.Tensor,
    keypoint_set: str,
    focal: float | Sequence[float] | torch.Tensor,
    center: Sequence[float] | torch.Tensor,
    smoothing: float = 0.0,
) -> Lift:
    """Every frame's body from one person's 2D keypoints over T >= 1 frames.

    points2d (T, K, 2) pixels and confidences (T, K) (0: missing) of a body keypoint set
    (coco17, coco23, body25, mediapipe33); focal (px: one value, (fx, fy), or (T, 2) per frame) and
    the principal point center (2,) or (T, 2). The window is padded at its ends with its first and
    last frames (before the first frame only, in causal mode), so any length works. `smoothing` > 0:
    the per-frame readings (rotations, depth, image position) are averaged over a Gaussian of this
    standard deviation in frames (it reads future frames, also in causal mode)."""
    if points2d.dim() != 3 or points2d.shape[-1] != 2 or confidences.shape != points2d.shape[:2]:
        raise ValueError(f"lift takes points2d (T, K, 2) and confidences (T, K), got {tuple(points2d.shape)} "
                         f"and {tuple(confidences.shape)}")  # fmt: skip
    if len(points2d) == 0:
        raise ValueError("lift needs at least one frame")
    if points2d.shape[1] != len(keypoint_names(keypoint_set)):
        raise ValueError(f"{keypoint_set} has {len(keypoint_names(keypoint_set))} points, got {points2d.shape[1]}")
    was_training = model.training
    model.eval()
    dtype, device = model.out.weight.dtype, model.out.weight.device
    t = len(points2d)
    focal_t, center_t = _per_frame(focal, t, dtype, device), _per_frame(center, t, dtype, device)
    try:
        points = {keypoint_set: (points2d.to(device, dtype), confidences.to(device, dtype))}
        xy, conf = gather_points(points, focal_t, center_t)
        feats = features(xy, conf)
        half = model.receptive_field // 2
        before, after = (2 * half, 0) if model.causal else (half, half)
        padded = torch.cat([feats[:1].expand(before, -1), feats, feats[-1:].expand(after, -1)])
        out = model(padded[None])
    finally:
        model.train(was_training)
    seen = (conf > 0).sum(1) >= 2
    size, mid = feats[:, BOX_SIZE], feats[:, BOX_MID]
    log_depth = _fill_gaps(out.log_depth_size[0] - torch.log(size.clamp(min=1e-6)), seen)
    root = _fill_gaps(mid + size[:, None] * out.root_xy[0], seen)
    rotations = out.rotations[0]
    if smoothing > 0:
        rotations = smooth_rotations(rotations, smoothing)
        log_depth, root = gaussian_smooth(log_depth, smoothing), gaussian_smooth(root, smoothing)
    rot = matrix_to_axis_angle(rotations)
    weight = seen.to(dtype) if seen.any() else torch.ones(t, dtype=dtype)
    shape = (out.shape[0] * weight[:, None]).sum(0) / weight.sum()
    depth = log_depth.exp()
    return Lift(rot[:, 0], rot[:, 1:], shape, depth / depth[0], depth, root * focal_t + center_t)


def save(model: TemporalLifter, path: str | Path) -> None:
    """Write the weights (the initialiser's included, floating point as float16) and both layouts
    (tensors and plain values only) atomically; `load` reads them back as float32."""
    state = {
        k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu().clone()
        for k, v in model.state_dict().items()
    }
    ini = model.initialiser
    layout = {
        "width": model.width,
        "dilations": list(model.dilations),
        "dropout": model.dropout,
        "causal": model.causal,
        "initialiser": {"width": ini.width, "blocks": ini.blocks, "dropout": ini.dropout, "hypotheses": ini.hypotheses},
    }
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "layout": layout, "state_dict": state}, tmp)


def load(path: str | Path | None = None, map_location: str | torch.device = "cpu") -> TemporalLifter:
    """The lifter (eval mode) from `path` (None: the shipped one), read with weights_only=True and
    loaded strictly (missing or unexpected weights raise CheckpointKeyError naming them)."""
    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no temporal lifter checkpoint at {path}; make one: python -m prior.initialiser.temporal_train"
        )
    raw = read_formatted(path, FORMAT, "a temporal lifter", map_location)
    layout = dict(raw.get("layout") or {})
    ini = layout.pop("initialiser", {})
    initialiser = Initialiser(**{k: ini[k] for k in ("width", "blocks", "dropout", "hypotheses") if k in ini})
    model = TemporalLifter(
        initialiser, **{k: layout[k] for k in ("width", "dilations", "dropout", "causal") if k in layout}
    )
    load_strictly(model, raw["state_dict"], path, "temporal lifter")
    return model.to(map_location).eval()
