"""A learned start for the fitter: one person's 2D keypoints -> body pose, camera-frame orientation, shape.

Input: the points of any supported body keypoint set (COCO-17/23, BODY_25,
MediaPipe-33), placed by name on `INPUT_POINTS`. Pixels are first turned into
normalised camera coordinates ((xy - center) / focal), so the network never
sees the focal length; each point is then given relative to the centre of the
visible points' box, divided by the box's longer side, with its confidence (0:
missing). Three more inputs say where that box lies in the camera (its centre
and size in normalised coordinates), which ties the orientation to the camera
frame (a person at the image border is seen obliquely).

Output: the global orientation (camera coordinates: x right, y down, z forward)
and the 21 body joint rotations in the SMPL-X convention, each as a 6D rotation
(Zhou et al. 2019), and the shape in Anny's 6 unconstrained phenotype
parameters. One view does not fix the depth of the limbs (a forearm pointing
toward or away from the camera projects alike), and a regressed answer lands
between such readings. So the network may give K hypotheses of the orientation
and pose: the first is that regressed answer (trained on every view), the other
K - 1 are committed readings, trained winner-takes-all (each view teaches its
closest one, Rupprecht et al. 2017), with a classifier of which is closest that
orders them. Training: `python -m prior.initialiser.train` (synthetic views of
the training actors' mocap on Anny; `prior.initialiser.data`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from body.keypoint_sets import BODY25, COCO23, MEDIAPIPE33, keypoint_names
from body.rotations import matrix_to_axis_angle
from body.skeleton import NUM_BODY_JOINTS
from configs.files import atomic_path
from prior.vposer.checkpoint import CHECKPOINTS, load_strictly, read_formatted
from prior.vposer.model import Rot6dToMatrix

# Every named body point of the supported sets, in a fixed order.
INPUT_POINTS: tuple[str, ...] = tuple(dict.fromkeys(COCO23 + BODY25 + MEDIAPIPE33))
BODY_SETS: tuple[str, ...] = ("coco17", "coco23", "body25", "mediapipe33")
NUM_FEATURES = 3 * len(INPUT_POINTS) + 3
NUM_SHAPE = 6  # Anny's phenotypes
DEFAULT_CHECKPOINT = CHECKPOINTS / "initialiser_default.pt"
FORMAT = "bodyfit-initialiser-1"


def point_index(names: Sequence[str], device: torch.device | str = "cpu") -> torch.Tensor:
    """Positions in INPUT_POINTS of a keypoint set's point names, on `device` (ValueError for an unknown name)."""
    unknown = [n for n in names if n not in INPUT_POINTS]
    if unknown:
        raise ValueError(f"the initialiser does not know the keypoints {unknown}; use one of {BODY_SETS}")
    return torch.tensor([INPUT_POINTS.index(n) for n in names], device=device)


def features(xy: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
    """Network inputs (N, NUM_FEATURES) from points on INPUT_POINTS in normalised camera coordinates.

    xy (N, P, 2) = (pixels - center) / focal; conf (N, P) in [0, 1], 0 where missing.
    A row without visible points gets zeros."""
    seen = conf > 0
    big = torch.finfo(xy.dtype).max
    lo = torch.where(seen[..., None], xy, big).amin(1)
    hi = torch.where(seen[..., None], xy, -big).amax(1)
    any_seen = seen.any(1, keepdim=True)
    mid = torch.where(any_seen, (lo + hi) / 2, 0.0)
    size = torch.where(any_seen, (hi - lo).amax(1, keepdim=True), 1.0).clamp(min=1e-6)
    rel = (xy - mid[:, None]) / size[..., None] * seen[..., None]
    points = torch.cat([rel, conf.clamp(0, 1)[..., None] * seen[..., None]], -1)
    return torch.cat([points.flatten(1), mid, size * any_seen], 1)


def gather_points(
    sets: dict[str, tuple[torch.Tensor, torch.Tensor]], focal: torch.Tensor, center: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points of one or more body sets per row, on INPUT_POINTS, in normalised camera coordinates.

    sets: name -> (xy (N, K, 2) pixels, conf (N, K)); focal, center (N, 2). Where two sets
    name the same point, the more confident one is kept."""
    n = focal.shape[0]
    xy = focal.new_zeros(n, len(INPUT_POINTS), 2)
    conf = focal.new_zeros(n, len(INPUT_POINTS))
    for name, (pts, c) in sets.items():
        idx = point_index(keypoint_names(name), focal.device)
        better = c > conf[:, idx]
        xy[:, idx] = torch.where(better[..., None], (pts - center[:, None]) / focal[:, None], xy[:, idx])
        conf[:, idx] = torch.where(better, c, conf[:, idx])
    return xy, conf


@dataclass
class Prediction:
    """Per person: the regressed answer's global orientation (N, 3) and body pose (N, 21, 3) axis-angle,
    camera frame; shape (N, 6); the other hypotheses, most probable first: `others_orient` (N, K - 1, 3),
    `others_pose` (N, K - 1, 21, 3) and the classifier's `probability` (N, K - 1) that each is the closest."""

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    shape: torch.Tensor
    others_orient: torch.Tensor
    others_pose: torch.Tensor
    probability: torch.Tensor

    def every(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All K hypotheses, the regressed answer first: orientations (N, K, 3), poses (N, K, 21, 3)."""
        return (
            torch.cat([self.global_orient[:, None], self.others_orient], 1),
            torch.cat([self.body_pose[:, None], self.others_pose], 1),
        )


class Initialiser(nn.Module):
    """An MLP with residual blocks (Martinez et al. 2017's lifting layout) from 2D keypoints to a body."""

    def __init__(self, width: int = 1024, blocks: int = 2, dropout: float = 0.1, hypotheses: int = 1) -> None:
        super().__init__()
        self.width, self.blocks, self.dropout, self.hypotheses = width, blocks, dropout, hypotheses
        self.inp = nn.Sequential(nn.Linear(NUM_FEATURES, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout))
        self.body = nn.ModuleList(
            nn.Sequential(
                nn.Linear(width, width),
                nn.BatchNorm1d(width),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(width, width),
                nn.BatchNorm1d(width),
                nn.ReLU(),
                nn.Dropout(dropout),
            )
            for _ in range(blocks)
        )
        self.out = nn.Linear(width, self.outputs()[-1].stop)
        self.to_matrix = Rot6dToMatrix()

    def outputs(self) -> tuple[list[slice], slice, slice]:
        """Where the output layer puts each hypothesis' 22 6D rotations, the shape, and the logits
        of the hypotheses after the first."""
        n_rot, k = 6 * (1 + NUM_BODY_JOINTS), self.hypotheses
        rot = [slice(i * n_rot, (i + 1) * n_rot) for i in range(k)]
        return rot, slice(k * n_rot, k * n_rot + NUM_SHAPE), slice(k * n_rot + NUM_SHAPE, k * n_rot + NUM_SHAPE + k - 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features (N, NUM_FEATURES) -> rotations (N, K, 22, 3, 3) of K hypotheses (global orientation
        first; the regressed answer first), shape (N, 6) and the logits (N, K - 1) of the others."""
        h = self.inp(x)
        for block in self.body:
            h = h + block(h)
        out = self.out(h)
        rot, shape, logits = self.outputs()
        rot6d = out[:, rot[0].start : rot[-1].stop].reshape(len(x), self.hypotheses, -1)
        # Start from the identity (6D of I is [[1, 0], [0, 1], [0, 0]]) so early training is stable.
        identity = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0], dtype=out.dtype, device=out.device)
        matrices = self.to_matrix((rot6d + identity.repeat(1 + NUM_BODY_JOINTS)).flatten(0, 1))
        return matrices.unflatten(0, (len(x), self.hypotheses)), out[:, shape], out[:, logits]

    @torch.no_grad()
    def predict(
        self, sets: dict[str, tuple[torch.Tensor, torch.Tensor]], focal: torch.Tensor, center: torch.Tensor
    ) -> Prediction:
        """Bodies for N people: sets maps a body set's name to (xy (N, K, 2) pixels, conf (N, K));
        focal and center (N, 2) px."""
        was_training = self.training
        self.eval()
        try:
            dtype = self.out.weight.dtype
            sets = {k: (xy.to(dtype), c.to(dtype)) for k, (xy, c) in sets.items()}
            xy, conf = gather_points(sets, focal.to(dtype), center.to(dtype))
            rot, shape, logits = self(features(xy, conf))
        finally:
            self.train(was_training)
        probability, order = logits.softmax(-1).sort(-1, descending=True)
        order = torch.cat([order.new_zeros(len(order), 1), order + 1], 1)  # the regressed answer first
        aa = matrix_to_axis_angle(rot.gather(1, order[..., None, None, None].expand_as(rot)))
        return Prediction(aa[:, 0, 0], aa[:, 0, 1:], shape, aa[:, 1:, 0], aa[:, 1:, 1:], probability)


def widen(source: Initialiser, hypotheses: int, spread: float = 0.2, seed: int = 0) -> Initialiser:
    """A K-hypothesis initialiser started from a trained one: its trunk, shape head and first hypothesis;
    every further hypothesis a copy of the first whose output weights are perturbed by `spread` times
    their std (so that winner-takes-all training tells them apart); zero logits."""
    if source.hypotheses != 1:
        raise ValueError(f"widen starts from a one-hypothesis initialiser, not one with {source.hypotheses}")
    model = Initialiser(source.width, source.blocks, source.dropout, hypotheses)
    (src_rot,), src_shape, _ = source.outputs()
    rot, shape, _ = model.outputs()
    state = source.state_dict()
    w, b = state["out.weight"], state["out.bias"]
    out_w, out_b = w.new_zeros(model.out.weight.shape), b.new_zeros(model.out.bias.shape)
    gen = torch.Generator().manual_seed(seed)
    for k, rows in enumerate(rot):
        noise = torch.randn(w[src_rot].shape, generator=gen).to(w) * spread * w[src_rot].std() if k else 0.0
        out_w[rows], out_b[rows] = w[src_rot] + noise, b[src_rot]
    out_w[shape], out_b[shape] = w[src_shape], b[src_shape]
    model.load_state_dict({**state, "out.weight": out_w, "out.bias": out_b})
    return model.to(w.device)


def deepen(source: Initialiser, blocks: int, scale: float = 0.01, seed: int = 0) -> Initialiser:
    """A deeper initialiser started from a trained one: its layers, then `blocks - source.blocks` new
    residual blocks whose last batch norm scales by `scale` (> 0), so the network starts as (nearly)
    the source's function while every new weight still gets a gradient (at 0 the ReLU after that
    norm would block them all). New weights are drawn from `seed`; the global random state is kept."""
    if blocks < source.blocks:
        raise ValueError(f"deepen adds blocks: {blocks} is fewer than the source's {source.blocks}")
    if scale <= 0:
        raise ValueError(f"deepen needs scale > 0 (got {scale}): new blocks would get no gradient")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Initialiser(source.width, blocks, source.dropout, source.hypotheses)
    model.load_state_dict({**model.state_dict(), **source.state_dict()})
    with torch.no_grad():
        for block in model.body[source.blocks :]:
            norm = block[5]
            assert isinstance(norm, nn.BatchNorm1d), "a residual block's second batch norm is its 6th layer"
            norm.weight.fill_(scale)
    return model.to(source.out.weight.device)


def save(model: Initialiser, path: str | Path) -> None:
    """Write the weights and the layout (tensors and plain values only) atomically. Floating-point
    weights are stored in float16, which halves the file (`load` reads them back as float32)."""
    state = {
        k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu().clone()
        for k, v in model.state_dict().items()
    }
    layout = {"width": model.width, "blocks": model.blocks, "dropout": model.dropout, "hypotheses": model.hypotheses}
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "layout": layout, "state_dict": state}, tmp)


def load(path: str | Path | None = None, map_location: str | torch.device = "cpu") -> Initialiser:
    """The initialiser (eval mode) from `path` (None: the shipped one), read with weights_only=True
    and loaded strictly (missing or unexpected weights raise CheckpointKeyError naming them)."""
    path = DEFAULT_CHECKPOINT if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no initialiser checkpoint at {path}; make one: python -m prior.initialiser.train")
    raw = read_formatted(path, FORMAT, "an initialiser", map_location)
    layout = raw.get("layout") or {}
    model = Initialiser(**{k: layout[k] for k in ("width", "blocks", "dropout", "hypotheses") if k in layout})
    load_strictly(model, raw["state_dict"], path, "initialiser")
    return model.to(map_location).eval()
