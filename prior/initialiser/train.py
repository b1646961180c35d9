"""Train the fitter's learned start on synthetic views of the training actors' mocap.

    python -m prior.initialiser.train [--config FILE] [key=value ...]
    e.g. python -m prior.initialiser.train export=prior/checkpoints/initialiser_default.pt

Settings: configs/train_initialiser.yaml. Every pose of the prior dataset's
training split is put on Anny with a random adult shape once; each step then
draws fresh random views (`prior.initialiser.data.draw_views`). The loss is the
mean 3D joint distance (forward kinematics of the predicted rotations on Anny's
rest skeleton, camera frame, pelvis at the origin) plus rotation and shape
terms; with several hypotheses, the first learns so from every view, the others
winner-takes-all, with a classifier of which is closest. `init_from` starts from
a trained initialiser of the same width: a one-hypothesis one is widened to K
hypotheses (`prior.initialiser.model.widen`), and a shallower one deepened
(`prior.initialiser.model.deepen`). Metrics on
fixed views of the validation actors: MPJPE (the same joints; orientation
included), PA-MPJPE, orientation error. Resumes from out_dir/last.pt.
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
from body.rotations import geodesic_angle
from configs.files import write_text
from configs.training import InitialiserTraining
from prior.data.fk import RestSkeleton, rest_joints
from prior.evaluation.metrics import pa_mpjpe
from prior.initialiser.data import PosedBodies, ViewBatch, draw_views
from prior.initialiser.model import Initialiser, deepen, load, save, widen
from prior.initialiser.runs import resume, save_progress
from prior.vposer.checkpoint import export_run


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DictConfig:
    """configs/train_initialiser.yaml, then the YAML at `path`, then dotted overrides, checked against
    InitialiserTraining (ConfigError)."""
    return configs.load_config("train_initialiser", InitialiserTraining, path, overrides)


def dataset_folder(cfg: DictConfig) -> Path:
    """`data.dataset`, or the prior's dataset (configs/train_prior.yaml), built if needed."""
    if cfg.data.dataset:
        return Path(cfg.data.dataset)
    from prior.data.splits import dataset_folder as prior_folder
    from prior.vposer.train import load_config as prior_config

    return prior_folder(prior_config().data)


def losses(
    model: Initialiser, batch: ViewBatch, skeleton: RestSkeleton, weights: DictConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted loss of a batch (valid views only) and its unweighted terms.

    The first hypothesis learns from every view. With K > 1 hypotheses, each view also teaches the
    closest of the others (its joint and rotation terms) and `loss.others` times the mean over the
    rest (relaxed winner-takes-all, so that none is left untrained), and a cross-entropy teaches
    their logits which one is closest."""
    rot, shape, logits = model(batch.features)
    v = batch.valid
    rot, logits, true = rot[v], logits[v], batch.rotations[v]
    n, k = rot.shape[:2]
    joints = (skeleton(rot.flatten(0, 1)).unflatten(0, (n, k)) - skeleton(true)[:, None]).norm(dim=-1).mean(-1)
    rotations = (rot - true[:, None]).pow(2).sum((-1, -2)).mean(-1)
    per_hypothesis = weights.joints * joints + weights.rotations * rotations  # (n, K)
    terms = {
        "joints": joints[:, 0].mean(),
        "rotations": rotations[:, 0].mean(),
        "shape": (shape[v] - batch.shape[v]).pow(2).mean(),
    }
    total = per_hypothesis[:, 0].mean() + weights.shape * terms["shape"]
    if k > 1:
        others = per_hypothesis[:, 1:]
        closest = others.detach().argmin(1)
        share = torch.full_like(others, weights.others / max(k - 2, 1))
        share.scatter_(1, closest[:, None], 1.0 - weights.others if k > 2 else 1.0)
        terms["joints_closest_other"] = joints[:, 1:].gather(1, closest[:, None]).mean()
        terms["choice"] = torch.nn.functional.cross_entropy(logits, closest)
        total = total + (share * others).sum(1).mean() + weights.choice * terms["choice"]
    return total, {k: float(t.detach()) for k, t in terms.items()}


@torch.no_grad()
def evaluate(model: Initialiser, batch: ViewBatch, skeleton: RestSkeleton) -> dict[str, float]:
    """MPJPE, PA-MPJPE (mm) and orientation error (deg) of the first (regressed) hypothesis on fixed
    views (valid ones); with several hypotheses also the PA-MPJPE of the best one (an oracle's pick)."""
    was = model.training
    model.eval()
    rot, _, _ = model(batch.features)
    model.train(was)
    v = batch.valid
    rot, true = rot[v], batch.rotations[v]
    n, k = rot.shape[:2]
    pred, truth = skeleton(rot[:, 0]), skeleton(true)
    out = {
        "mpjpe_mm": float(1000 * (pred - truth).norm(dim=-1).mean()),
        "pa_mpjpe_mm": float(1000 * pa_mpjpe(pred, truth).mean()),
        "orientation_deg": float(torch.rad2deg(geodesic_angle(rot[:, 0, 0], true[:, 0])).mean()),
        "views": int(v.sum()),
    }
    if k > 1:
        every = pa_mpjpe(skeleton(rot.flatten(0, 1)), truth.repeat_interleave(k, 0)).reshape(n, k)
        out["pa_mpjpe_best_of_hypotheses_mm"] = float(1000 * every.amin(1).mean())
    return out


def init_source(cfg: DictConfig) -> Initialiser | None:
    """The trained initialiser `init_from` names (None without one), checked against `model`: the same
    width and dropout, at most `model.blocks` blocks, and 1 or `model.hypotheses` hypotheses."""
    if not cfg.init_from:
        return None
    source = load(cfg.init_from)
    if differ := [k for k in ("width", "dropout") if getattr(source, k) != cfg.model[k]]:
        raise ValueError(
            f"init_from {cfg.init_from} has another layout than model.{', model.'.join(differ)}: "
            + ", ".join(f"{k}={getattr(source, k)}" for k in differ)
            + "; set those to match it"
        )
    if source.blocks > cfg.model.blocks:
        raise ValueError(
            f"init_from {cfg.init_from} has {source.blocks} blocks, more than model.blocks={cfg.model.blocks}; "
            f"set model.blocks >= {source.blocks}"
        )
    if source.hypotheses not in (1, cfg.model.hypotheses):
        raise ValueError(
            f"init_from {cfg.init_from} has {source.hypotheses} hypotheses; set model.hypotheses="
            f"{source.hypotheses}, or start from a one-hypothesis initialiser to change their number"
        )
    return source


def posed_views(
    cfg: DictConfig, folder: Path, anny: BodyModel, rng: np.random.Generator
) -> tuple[PosedBodies, ViewBatch]:
    """The training poses (at most `data.max_train_poses`) on Anny, and the fixed validation views."""
    with np.load(folder / "train.npz") as d:
        pose, root = d["body_pose"], d["root_orient"]
    if cfg.data.max_train_poses and cfg.data.max_train_poses < len(pose):
        keep = rng.choice(len(pose), cfg.data.max_train_poses, replace=False)
        pose, root = pose[keep], root[keep]
    bodies = PosedBodies.build(anny, pose, root, rng)
    with np.load(folder / "val.npz") as d:
        keep = rng.choice(len(d["body_pose"]), min(cfg.data.val_views, len(d["body_pose"])), replace=False)
        val_bodies = PosedBodies.build(anny, d["body_pose"][keep], d["root_orient"][keep], rng)
    return bodies, draw_views(val_bodies, len(val_bodies), torch.Generator().manual_seed(12345), cfg.views)


def new_model(cfg: DictConfig, source: Initialiser | None) -> Initialiser:
    """The network to train: `source` (init_from) widened and deepened to `model`, or a fresh one."""
    if source is None:
        return Initialiser(cfg.model.width, cfg.model.blocks, cfg.model.dropout, cfg.model.hypotheses)
    if source.hypotheses != cfg.model.hypotheses:
        source = widen(source, cfg.model.hypotheses, seed=cfg.train.seed)
    return deepen(source, cfg.model.blocks, seed=cfg.train.seed)


def train(cfg: DictConfig) -> Path:
    """Train (or resume) and write out_dir/initialiser.pt and metrics.json; returns the weights' path."""
    t = cfg.train
    source = init_source(cfg)  # checked before the slow data preparation
    if t.cpu_threads:
        torch.set_num_threads(t.cpu_threads)
    torch.manual_seed(t.seed)
    rng = np.random.default_rng(t.seed)
    out = Path(cfg.out_dir)
    write_text(out / "config.yaml", OmegaConf.to_yaml(cfg))
    folder = dataset_folder(cfg)
    import body

    anny = body.create("anny")
    started = time.time()
    bodies, val = posed_views(cfg, folder, anny, rng)
    skeleton = RestSkeleton(rest_joints(anny), pelvis_at_origin=True)
    prepared = time.time() - started
    print(f"{len(bodies)} training poses, {int(val.valid.sum())} validation views; posed in {prepared:.0f} s")

    device = torch.device(t.device)
    model = new_model(cfg, source).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, t.steps) / t.steps)))
    gen = torch.Generator().manual_seed(t.seed)
    last, step, history = out / "last.pt", 0, []
    if cfg.resume and last.exists():
        step, history, state = resume(last, model, opt, gen, device)
        sched.load_state_dict(state["scheduler"])
    val = ViewBatch(*(x.to(device) for x in (val.features, val.rotations, val.shape, val.valid)))
    began = time.time()
    limit = 60 * t.max_minutes if t.max_minutes else float("inf")
    while step < t.steps and time.time() - began < limit:
        batch = draw_views(bodies, t.batch_size, gen, cfg.views)
        batch = ViewBatch(*(x.to(device) for x in (batch.features, batch.rotations, batch.shape, batch.valid)))
        loss, terms = losses(model, batch, skeleton, cfg.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        if step % t.val_every == 0 or step == t.steps:
            row = {"step": step, "minutes": round((time.time() - began) / 60, 2), **terms}
            row.update({f"val_{k}": v for k, v in evaluate(model, val, skeleton).items()})
            history.append(row)
            print(json.dumps(row), flush=True)
            save_progress(last, model, opt, gen, step, history, scheduler=sched.state_dict())
    model = model.cpu().eval()
    save(model, out / "initialiser.pt")
    val = ViewBatch(*(x.cpu() for x in (val.features, val.rotations, val.shape, val.valid)))
    metrics = {
        "dataset": str(folder),
        "train_poses": len(bodies),
        "steps": step,
        "finished": step >= t.steps,
        "training_minutes_this_run": round((time.time() - began) / 60, 1),
        "posing_seconds": round(prepared),
        "val": evaluate(model, val, skeleton),
        "history": history,
    }
    write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if cfg.export:
        export_run(out, Path(cfg.export), "initialiser.pt", "metrics.json")
    return out / "initialiser.pt"


def main(argv: list[str] | None = None) -> None:
    cfg = configs.command_line_config(load_config, "train_initialiser", __doc__.split("\n\n")[0], argv)
    print(f"weights: {train(cfg)}")


if __name__ == "__main__":
    main()
