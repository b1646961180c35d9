"""Synthetic videos for the temporal lifter: mocap sequences on Anny, moving cameras, detector-like noise.

`SequenceBodies.build` puts every frame of the mocap sequences (`prior.data.sequences`) on Anny
with one random adult shape per segment (`PosedBodies.build`). `draw_windows` then films random
windows: a frame rate of 15-60 fps (frames of the 30 fps sequences interpolated), the real root
trajectory, a camera 1.0-1.6 m above the floor at a random azimuth and distance, static or slowly
moving and panning after the person, a random field of view, image aspect and aim (people at the
border are cut off); the projections are corrupted like a detector's: one keypoint set per
window, white noise and slowly drifting errors, points missing at random and in occlusion bursts,
runs of frames with nobody found, outliers, left/right swaps of all labels or of one pair for a
few frames, random confidences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig

from body.base import BodyModel
from body.rotations import axis_angle_to_matrix
from body.shapes import random_shapes
from prior.data.sequences import Sequences
from prior.initialiser.data import ASPECTS, MIN_POINTS, MIRROR, SET_MASKS, SIDED, PosedBodies, _uniform
from prior.initialiser.model import BODY_SETS, features
from prior.initialiser.temporal_lifter import BOX_MID, BOX_SIZE


@dataclass
class SequenceBodies:
    """Every frame on Anny: points (N, P, 3) about the pelvis, unrotated; root rotations (N, 3, 3);
    root translations (N, 3) metres, y up; body rotations (N, 21, 3, 3); per frame shape (N, 6);
    per segment start, length and fps."""

    points: torch.Tensor
    root: torch.Tensor
    transl: torch.Tensor
    body_rot: torch.Tensor
    shape: torch.Tensor
    start: torch.Tensor
    length: torch.Tensor
    fps: torch.Tensor

    @staticmethod
    def build(model: BodyModel, seqs: Sequences, rng: np.random.Generator) -> "SequenceBodies":
        shapes = np.repeat(random_shapes(model, len(seqs.length), rng), seqs.length, axis=0)
        posed = PosedBodies.build(model, seqs.body_pose, seqs.root_orient, rng, shapes=shapes)
        return SequenceBodies(
            posed.points,
            posed.root,
            torch.as_tensor(seqs.transl, dtype=torch.float32),
            axis_angle_to_matrix(posed.body_pose),
            posed.shape,
            torch.as_tensor(seqs.start),
            torch.as_tensor(seqs.length),
            torch.as_tensor(seqs.fps, dtype=torch.float32),
        )


@dataclass
class WindowBatch:
    """Network inputs and targets of B windows of T frames."""

    features: torch.Tensor  # (B, T, NUM_FEATURES)
    rotations: torch.Tensor  # (B, T, 22, 3, 3) global orientation (camera frame), then the body pose
    shape: torch.Tensor  # (B, 6)
    root_xy: torch.Tensor  # (B, T, 2) pelvis in the image, relative to the points' box (see TemporalLifter)
    log_depth_size: torch.Tensor  # (B, T) log(pelvis depth * box size)
    valid: torch.Tensor  # (B, T) bool: enough visible points to learn from

    def to(self, device: torch.device | str) -> "WindowBatch":
        return WindowBatch(*(x.to(device) for x in vars(self).values()))

    def frames(self, kept: slice) -> "WindowBatch":
        """The targets of the output frames `kept` (features unchanged)."""
        return WindowBatch(
            self.features, self.rotations[:, kept], self.shape, self.root_xy[:, kept],
            self.log_depth_size[:, kept], self.valid[:, kept],
        )  # fmt: skip


def _lerp(x: torch.Tensor, i0: torch.Tensor, i1: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    w = w.reshape(*w.shape, *[1] * (x.dim() - 1))
    return x[i0] * (1 - w) + x[i1] * w


def _bursts(gen: torch.Generator, shape: tuple[int, int, int], rate: torch.Tensor, mean_frames: float) -> torch.Tensor:
    """(B, T, K) bool runs: each (window, item) starts a run with probability `rate` (B,) per frame,
    and a run ends with probability 1 / mean_frames per frame."""
    b, t, k = shape
    start = torch.rand(shape, generator=gen) < rate[:, None, None]
    stop = torch.rand(shape, generator=gen) < 1.0 / mean_frames
    out = torch.zeros(shape, dtype=torch.bool)
    on = torch.zeros(b, k, dtype=torch.bool)
    for i in range(t):
        on = (on & ~stop[:, i]) | start[:, i]
        out[:, i] = on
    return out


def _look_at(eye: torch.Tensor, target: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """World-to-camera rotations (..., 3, 3) (x right, y down, z forward; world y up) of cameras at
    `eye` looking at `target`, turned by `roll` (...) about their axis."""
    z = torch.nn.functional.normalize(target - eye, dim=-1)
    up = torch.tensor([0.0, 1.0, 0.0]).expand_as(z)
    x = torch.nn.functional.normalize(torch.linalg.cross(z, up), dim=-1)
    y = torch.linalg.cross(z, x)
    cos, sin = torch.cos(roll)[..., None], torch.sin(roll)[..., None]
    return torch.stack([cos * x + sin * y, cos * y - sin * x, z], -2)


@dataclass(frozen=True)
class _Times:
    """Where a batch of windows samples the mocap: the segment, the frame rate, and per output
    frame the two source frames and the weight between them."""

    seg: torch.Tensor  # (n,)
    fps: torch.Tensor  # (n,)
    i0: torch.Tensor  # (n, T) global frame indices
    i1: torch.Tensor  # (n, T)
    w: torch.Tensor  # (n, T)

    def lerp(self, x: torch.Tensor) -> torch.Tensor:
        return _lerp(x, self.i0, self.i1, self.w)


def _sample_times(bodies: SequenceBodies, n: int, frames: int, gen: torch.Generator, cfg: DictConfig) -> _Times:
    """Segments long enough for the window at the highest rate; a rate, then a start time."""
    fps_lo, fps_hi = cfg.fps
    need = (frames - 1) * bodies.fps / fps_hi + 1
    usable = (bodies.length >= need).nonzero().flatten()
    if len(usable) == 0:
        raise ValueError(f"no mocap segment is long enough for {frames} frames at {fps_hi} fps")
    seg = usable[torch.multinomial(bodies.length[usable].float(), n, replacement=True, generator=gen)]
    fps_min = (bodies.fps[seg] * (frames - 1) / (bodies.length[seg] - 1).float()).clamp(min=fps_lo)
    fps = fps_min + (fps_hi - fps_min) * torch.rand(n, generator=gen)
    step = bodies.fps[seg] / fps
    span = (frames - 1) * step
    t0 = torch.rand(n, generator=gen) * ((bodies.length[seg] - 1).float() - span).clamp(min=0)
    time = t0[:, None] + step[:, None] * torch.arange(frames)
    i0 = time.floor().long().clamp(max=(bodies.length[seg] - 1)[:, None])
    w = time - i0
    i1 = (i0 + 1).clamp(max=(bodies.length[seg] - 1)[:, None])
    return _Times(seg, fps, i0 + bodies.start[seg, None], i1 + bodies.start[seg, None], w)


def _camera(
    world: torch.Tensor, transl: torch.Tensor, fps: torch.Tensor, gen: torch.Generator, cfg: DictConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A camera per window above its floor, at a random azimuth and distance, drifting, aimed near
    the person: its world-to-camera rotations (n, T, 3, 3), positions (n, T, 3) and image
    half-extents (n, 2) (tangents of the half field of view)."""
    n, frames = world.shape[:2]
    centre = transl.mean(1)
    floor = world[..., 1].flatten(1).amin(1)
    half_long = torch.tan(torch.deg2rad(_uniform(gen, n, *cfg.fov_deg)) / 2)
    aspect = torch.tensor(ASPECTS)[torch.randint(len(ASPECTS), (n,), generator=gen)]
    half = torch.stack([half_long * aspect.clamp(max=1), half_long / aspect.clamp(min=1)], 1)
    height = (world[..., 1].amax(2) - world[..., 1].amin(2)).amax(1).clamp(min=0.5)
    lo, hi = cfg.box_fraction
    fraction = torch.exp(_uniform(gen, n, math.log(lo), math.log(hi)))
    reach = (transl[..., [0, 2]] - centre[:, None, [0, 2]]).norm(dim=-1).amax(1)
    distance = torch.maximum(height / (fraction * 2 * half.amin(1)), reach + 1.0)
    az = _uniform(gen, n, -math.pi, math.pi)
    eye = torch.stack([centre[:, 0] + distance * torch.sin(az), floor + _uniform(gen, n, *cfg.camera_height),
                       centre[:, 2] + distance * torch.cos(az)], 1)  # fmt: skip
    heading = _uniform(gen, n, -math.pi, math.pi)
    velocity = _uniform(gen, n, 0, cfg.drift)[:, None] * torch.stack(
        [torch.cos(heading), torch.zeros(n), torch.sin(heading)], 1
    )
    seconds = torch.arange(frames) / fps[:, None]
    eye_t = eye[:, None] + velocity[:, None] * seconds[..., None]
    track = (torch.rand(n, generator=gen) < cfg.track).float()[:, None, None]
    aim = centre[:, None] + track * (transl - centre[:, None])
    aim[..., 1] = floor[:, None] + _uniform(gen, n, 0.6, 1.2)[:, None]
    off = (torch.rand(n, 2, generator=gen) * 2 - 1) * half * cfg.centre_spread  # aim off the person
    up = torch.tensor([0.0, 1.0, 0.0])
    right = torch.nn.functional.normalize(torch.linalg.cross(aim[:, 0] - eye, up.expand(n, 3)), dim=-1)
    aim = aim + (distance[:, None] * (off[:, :1] * right - off[:, 1:] * up))[:, None]
    roll = torch.deg2rad((torch.randn(n, generator=gen) * cfg.roll_deg).clamp(-3 * cfg.roll_deg, 3 * cfg.roll_deg))
    return _look_at(eye_t, aim, roll[:, None].expand(n, frames)), eye_t, half


def _detect(
    xy: torch.Tensor, z: torch.Tensor, half: torch.Tensor, gen: torch.Generator, cfg: DictConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A detector's view of the projected points xy (n, T, P, 2) at depths z: the window's keypoint
    set, in the image, in front, then drops, gaps, noise, drift, outliers and left/right swaps.
    Returns points, seen (n, T, P) and confidences (n, T, P)."""
    n, frames, p = z.shape
    which = torch.randint(len(BODY_SETS), (n,), generator=gen)
    seen = SET_MASKS[which][:, None] & (z > 0.1) & (xy.abs() <= half[:, None, None]).all(-1)
    seen &= torch.rand(n, frames, p, generator=gen) >= _uniform(gen, n, 0, cfg.drop)[:, None, None]
    seen &= ~_bursts(gen, (n, frames, p), _uniform(gen, n, 0, cfg.bursts), cfg.burst_frames)
    gap = (torch.rand(n, generator=gen) < cfg.gap).float() * 0.05
    seen &= ~_bursts(gen, (n, frames, 1), gap, cfg.burst_frames)
    size = (xy.amax(2) - xy.amin(2)).amax(-1)  # (n, T)
    white = _uniform(gen, n, 0, cfg.noise)[:, None, None, None] * torch.randn(xy.shape, generator=gen)
    drift = torch.zeros_like(xy)
    level = _uniform(gen, n, 0, cfg.jitter)[:, None, None] * math.sqrt(1 - 0.9**2)
    state = torch.randn(n, p, 2, generator=gen) * level / math.sqrt(1 - 0.9**2)
    for i in range(frames):
        state = 0.9 * state + level * torch.randn(n, p, 2, generator=gen)
        drift[:, i] = state
    xy = xy + (white + drift) * size[..., None, None]
    conf = _uniform(gen, n * frames * p, 0.3, 1.0).reshape(n, frames, p)
    outlier = torch.rand(n, frames, p, generator=gen) < _uniform(gen, n, 0, cfg.outlier)[:, None, None]
    mid = (xy * seen[..., None]).sum(2) / seen.sum(2).clamp(min=1)[..., None]
    wild = mid[:, :, None] + (torch.rand(xy.shape, generator=gen) - 0.5) * 1.5 * size[..., None, None]
    xy = torch.where(outlier[..., None], wild, xy)
    conf = torch.where(outlier, conf * 0.5, conf)
    perm = torch.arange(p).repeat(n, frames, 1)
    swap_all = _bursts(gen, (n, frames, 1), torch.full((n,), cfg.swap_all), 5.0)[..., 0]
    perm[swap_all] = MIRROR
    one = _bursts(gen, (n, frames, 1), torch.full((n,), cfg.swap_one), 5.0)[..., 0]
    pair = SIDED[torch.randint(len(SIDED), (n,), generator=gen)][:, None].expand(n, frames)[one]
    rows = one.nonzero(as_tuple=True)
    perm[(*rows, pair)], perm[(*rows, MIRROR[pair])] = MIRROR[pair], pair
    return xy.gather(2, perm[..., None].expand_as(xy)), seen.gather(2, perm), conf.gather(2, perm)


def draw_windows(
    bodies: SequenceBodies, n: int, frames: int, gen: torch.Generator, cfg: DictConfig, pad: int = 0
) -> WindowBatch:
    """n random filmed windows of `frames` frames (settings: the `views` section of
    configs/train_temporal_lifter.yaml). In a share `cfg.ends` of them, up to `pad` frames at the
    start, and independently at the end, repeat the next frame inward (as `lift` pads a clip)."""
    times = _sample_times(bodies, n, frames, gen, cfg)
    root = times.lerp(bodies.root)  # (n, T, 3, 3), near-orthonormal
    transl = times.lerp(bodies.transl)
    world = torch.einsum("ntij,ntpj->ntpi", root, times.lerp(bodies.points)) + transl[:, :, None]
    cam_rot, eye_t, half = _camera(world, transl, times.fps, gen, cfg)
    cam = torch.einsum("ntij,ntpj->ntpi", cam_rot, world - eye_t[:, :, None])
    pelvis = torch.einsum("ntij,ntj->nti", cam_rot, transl - eye_t)
    z = cam[..., 2]
    xy, seen, conf = _detect(cam[..., :2] / z.clamp(min=1e-3)[..., None], z, half, gen, cfg)

    feats = features((xy * seen[..., None]).flatten(0, 1), (conf * seen).flatten(0, 1)).unflatten(0, (n, frames))
    cut = torch.randint(0, pad + 1, (2, n), generator=gen) * (torch.rand((2, n), generator=gen) < cfg.ends)
    inner = torch.arange(frames).expand(n, -1).clamp(cut[0, :, None], frames - 1 - cut[1, :, None])
    feats = feats.gather(1, inner[..., None].expand_as(feats))
    box_size = feats[..., BOX_SIZE].clamp(min=1e-6)
    root_xy = (pelvis[..., :2] / pelvis[..., 2:].clamp(min=1e-3) - feats[..., BOX_MID]) / box_size[..., None]
    rot = torch.cat([(cam_rot @ root)[:, :, None], times.lerp(bodies.body_rot)], 2)
    valid = (seen.sum(-1) >= MIN_POINTS) & (pelvis[..., 2] > 0.1)
    log_depth = torch.log(pelvis[..., 2].clamp(min=1e-3) * box_size)
    return WindowBatch(feats, rot, bodies.shape[bodies.start[times.seg]], root_xy, log_depth, valid)
