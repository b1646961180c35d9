"""Train the temporal lifter on synthetic videos of the training actors' mocap sequences.

    python -m prior.initialiser.temporal_train [--config FILE] [key=value ...]
    e.g. python -m prior.initialiser.temporal_train export=prior/checkpoints/temporal_lifter_default.pt

Settings: configs/train_temporal_lifter.yaml. The sequences (`prior.data.sequences`, built from
`data.mocap` on first use) are put on Anny with one random adult shape per segment once; each
step then films fresh random windows (`prior.initialiser.temporal_data.draw_windows`). The frozen single-frame
initialiser reads every frame; the loss on the output frames is the mean 3D joint distance
(forward kinematics on Anny's rest skeleton, camera frame, pelvis at the origin: the initialiser's
`RestSkeleton`), rotation, shape, joint-velocity, root-position and depth terms. Metrics on fixed
30 fps windows of the validation actors, for the lifter and for the initialiser alone (its
regressed answer frame by frame) on the same frames: MPJPE, PA-MPJPE, acceleration error
(pelvis-centred joints, mm/frame^2), orientation error, depth error relative to the window's first
output frame. Resumes from out_dir/last.pt.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import configs
from body.base import BodyModel
from body.rotations import geodesic_angle, smooth_rotations
from configs.files import write_text
from configs.training import LifterTraining
from prior.data.build import DEFAULT_VAL_SUBJECTS
from prior.data.fk import RestSkeleton, rest_joints
from prior.data.sequences import SEQUENCES_FORMAT, Sequences, build_sequences
from prior.evaluation.metrics import pa_mpjpe
from prior.initialiser.model import load as load_initialiser
from prior.initialiser.runs import resume, save_progress
from prior.initialiser.temporal_data import SequenceBodies, WindowBatch, draw_windows
from prior.initialiser.temporal_lifter import Output, TemporalLifter, receptive_field, save
from prior.vposer.checkpoint import export_run

VAL_FPS = 30.0
VAL_SEED = 12345


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    """configs/train_temporal_lifter.yaml, then the YAML at `path`, then dotted overrides, checked
    against LifterTraining (ConfigError)."""
    return configs.load_config("train_temporal_lifter", LifterTraining, path, overrides)


def sequences_folder(cfg: DictConfig) -> Path:
    """`data.sequences`, built from `data.mocap` (held-out actors: DEFAULT_VAL_SUBJECTS) when it holds
    no train.npz; a folder built with other held-out actors is refused."""
    folder = Path(cfg.data.sequences)
    if not (folder / "train.npz").is_file():
        if not Path(cfg.data.mocap).exists():
            raise FileNotFoundError(f"no sequences in {folder} and no mocap at {cfg.data.mocap} to build them from")
        build_sequences(cfg.data.mocap, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest.get("format") != SEQUENCES_FORMAT:
        raise ValueError(f"{folder}: not a sequences folder of format {SEQUENCES_FORMAT!r}; rebuild it")
    if sorted(manifest["settings"]["val_subjects"]) != sorted(DEFAULT_VAL_SUBJECTS):
        raise ValueError(f"{folder} holds out {manifest['settings']['val_subjects']}, not {list(DEFAULT_VAL_SUBJECTS)}")
    return folder


def _first_frames(seqs: Sequences, limit: int | None) -> Sequences:
    """The first segments, up to about `limit` frames (all when None)."""
    if not limit or limit >= seqs.num_frames:
        return seqs
    keep = max(1, int(np.searchsorted(np.cumsum(seqs.length), limit)) + 1)
    end = int(seqs.start[keep - 1] + seqs.length[keep - 1])
    per_segment = {k: getattr(seqs, k)[:keep] for k in ("start", "length", "fps", "actor", "clip")}
    per_frame = {k: getattr(seqs, k)[:end] for k in ("body_pose", "root_orient", "transl")}
    return Sequences(**per_frame, **per_segment, actors=seqs.actors, clips=seqs.clips)


def losses(
    out: Output, batch: WindowBatch, skeleton: RestSkeleton, weights: DictConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted loss over the valid output frames and its unweighted terms (batch: the output
    frames' targets)."""
    v = batch.valid
    pred, true = skeleton(out.rotations), skeleton(batch.rotations)
    both = v[:, 1:] & v[:, :-1]
    speed = ((pred[:, 1:] - pred[:, :-1]) - (true[:, 1:] - true[:, :-1])).norm(dim=-1).mean(-1)
    terms = {
        "joints": (pred - true).norm(dim=-1).mean(-1)[v].mean(),
        "rotations": (out.rotations - batch.rotations).pow(2).sum((-1, -2)).mean(-1)[v].mean(),
        "shape": (out.shape - batch.shape[:, None]).pow(2).mean(-1)[v].mean(),
        "velocity": speed[both].mean() if both.any() else speed.sum() * 0,
        "root_xy": (out.root_xy - batch.root_xy).abs().sum(-1)[v].mean(),
        "depth": (out.log_depth_size - batch.log_depth_size).abs()[v].mean(),
    }
    total = sum(weights[k] * t for k, t in terms.items())
    return total, {k: float(t.detach()) for k, t in terms.items()}


def _errors(pred: torch.Tensor, true: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-frame MPJPE and PA-MPJPE (m) of valid frames, and the acceleration error (m/frame^2) of
    frames whose neighbours are valid too; joints (B, T, 22, 3), pelvis at the origin."""
    accel = (pred[:, 2:] - 2 * pred[:, 1:-1] + pred[:, :-2]) - (true[:, 2:] - 2 * true[:, 1:-1] + true[:, :-2])
    triple = valid[:, 2:] & valid[:, 1:-1] & valid[:, :-2]
    return {
        "mpjpe": (pred - true).norm(dim=-1).mean(-1)[valid],
        "pa_mpjpe": pa_mpjpe(pred[valid], true[valid]),
        "accel": accel.norm(dim=-1).mean(-1)[triple],
    }


@torch.no_grad()
def evaluate(
    model: TemporalLifter, batch: WindowBatch, skeleton: RestSkeleton, smoothing: float = 0.0
) -> dict[str, dict[str, float]]:
    """Metrics (mm, mm/frame^2, deg, %) of the lifter and of the initialiser alone on the same valid
    output frames of fixed windows (batch: full windows); `smoothing` > 0: of the lifter's rotations
    averaged over time as `lift` does."""
    was = model.training
    model.eval()
    out = model(batch.features)
    model.train(was)
    lifted = out.rotations
    if smoothing > 0:
        lifted = smooth_rotations(lifted.transpose(0, 1), smoothing).transpose(0, 1)
    half = model.receptive_field // 2
    kept = slice(2 * half, None) if model.causal else slice(half, batch.features.shape[1] - half)
    target = batch.frames(kept)
    b, t = target.valid.shape
    ini_rot = model.initialiser(batch.features[:, kept].flatten(0, 1))[0][:, 0].unflatten(0, (b, t))
    true = skeleton(target.rotations)
    v = target.valid
    result = {}
    for name, rot in (("lifter", lifted), ("initialiser", ini_rot)):
        e = _errors(skeleton(rot), true, v)
        result[name] = {
            "mpjpe_mm": float(1000 * e["mpjpe"].mean()),
            "pa_mpjpe_mm": float(1000 * e["pa_mpjpe"].mean()),
            "pa_mpjpe_p90_mm": float(1000 * e["pa_mpjpe"].quantile(0.9)),
            "accel_mm_per_frame2": float(1000 * e["accel"].mean()),
            "orientation_deg": float(torch.rad2deg(geodesic_angle(rot[v][:, 0], target.rotations[v][:, 0])).mean()),
        }
    # The lifter's depth relative to the first output frame: log(depth) = output - log(box size).
    log_size = torch.log(batch.features[:, kept, -1].clamp(min=1e-6))
    pred_d, true_d = out.log_depth_size - log_size, target.log_depth_size - log_size
    rel = ((pred_d - pred_d[:, :1]) - (true_d - true_d[:, :1])).exp() - 1
    result["lifter"]["depth_vs_first_frame_pct"] = float(100 * rel.abs()[v & v[:, :1]].mean())
    result["lifter"]["depth_pct"] = float(100 * ((pred_d - true_d).exp() - 1).abs()[v].mean())
    result["frames"] = int(v.sum())
    return result


def progress(t: DictConfig, step: int, minutes: float) -> float:
    """How far training is, 0 to 1: through train.steps, or train.max_minutes if that ends first. The
    learning rate follows a cosine over it, so a run cut by the time budget ends annealed too."""
    done = step / t.steps
    return min(1.0, max(done, minutes / t.max_minutes) if t.max_minutes else done)


def posed_windows(
    cfg: DictConfig, folder: Path, anny: BodyModel, rng: np.random.Generator
) -> tuple[SequenceBodies, WindowBatch]:
    """The training sequences (their first `data.max_train_frames`) on Anny, and the fixed
    validation windows (at VAL_FPS, no padded ends)."""
    train_seqs = _first_frames(Sequences.read(folder / "train.npz"), cfg.data.max_train_frames)
    bodies = SequenceBodies.build(anny, train_seqs, rng)
    val_bodies = SequenceBodies.build(anny, Sequences.read(folder / "val.npz"), np.random.default_rng(VAL_SEED))
    val_views = OmegaConf.merge(cfg.views, {"fps": [VAL_FPS, VAL_FPS], "ends": 0.0})
    gen = torch.Generator().manual_seed(VAL_SEED)
    return bodies, draw_windows(val_bodies, cfg.data.val_windows, cfg.train.frames, gen, val_views)


def train(cfg: DictConfig) -> Path:
    """Train (or resume) and write out_dir/temporal_lifter.pt and metrics.json; returns the weights' path."""
    t = cfg.train
    field = receptive_field(cfg.model.dilations)
    if t.frames < field + 2:
        raise ValueError(f"train.frames={t.frames} leaves under 3 output frames: the receptive field is {field}")
    if t.cpu_threads:
        torch.set_num_threads(t.cpu_threads)
    torch.manual_seed(t.seed)
    rng = np.random.default_rng(t.seed)
    out = Path(cfg.out_dir)
    write_text(out / "config.yaml", OmegaConf.to_yaml(cfg))
    initialiser = load_initialiser(cfg.initialiser)
    folder = sequences_folder(cfg)
    import body

    anny = body.create("anny")
    started = time.time()
    bodies, val = posed_windows(cfg, folder, anny, rng)
    skeleton = RestSkeleton(rest_joints(anny), pelvis_at_origin=True)
    prepared = time.time() - started
    posed = f"{bodies.points.shape[0]} training frames in {len(bodies.length)} segments; posed in {prepared:.0f} s"
    print(posed, flush=True)

    device = torch.device(t.device)
    m = cfg.model
    model = TemporalLifter(initialiser, m.width, list(m.dilations), m.dropout, m.causal).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    gen = torch.Generator().manual_seed(t.seed)
    last, step, history, minutes_before = out / "last.pt", 0, [], 0.0
    if cfg.resume and last.exists():
        step, history, state = resume(last, model, opt, gen, device)
        minutes_before = float(state["minutes"])
    half = model.receptive_field // 2
    kept = slice(2 * half, None) if m.causal else slice(half, t.frames - half)
    val = val.to(device)
    began = time.time()
    minutes = lambda: minutes_before + (time.time() - began) / 60  # noqa: E731
    while (done := progress(t, step, minutes())) < 1:
        for group in opt.param_groups:
            group["lr"] = t.lr * 0.5 * (1 + math.cos(math.pi * done))
        batch = draw_windows(bodies, t.batch_size, t.frames, gen, cfg.views, half).to(device)
        loss, terms = losses(model(batch.features), batch.frames(kept), skeleton, cfg.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % t.val_every == 0 or progress(t, step, minutes()) >= 1:
            row = {"step": step, "minutes": round(minutes(), 2), **terms}
            row["val"] = evaluate(model, val, skeleton)
            history.append(row)
            print(json.dumps(row), flush=True)
            save_progress(last, model, opt, gen, step, history, minutes=minutes())
    model = model.cpu().eval()
    save(model, out / "temporal_lifter.pt")
    metrics = {
        "sequences": str(folder),
        "train_frames": int(bodies.points.shape[0]),
        "train_segments": len(bodies.length),
        "steps": step,
        "finished": progress(t, step, minutes()) >= 1,
        "training_minutes": round(minutes(), 1),
        "posing_seconds": round(prepared),
        "receptive_field": model.receptive_field,
        "val": evaluate(model, val.to("cpu"), skeleton),
        "history": history,
    }
    write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if cfg.export:
        export_run(out, Path(cfg.export), "temporal_lifter.pt", "metrics.json")
    return out / "temporal_lifter.pt"


def main(argv: list[str] | None = None) -> None:
    cfg = configs.command_line_config(load_config, "train_temporal_lifter", __doc__.split("\n\n")[0], argv)
    print(f"weights: {train(cfg)}")


if __name__ == "__main__":
    main()
