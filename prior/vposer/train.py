"""Train VPoser with PyTorch Lightning: `python -m prior.vposer.train [--config F] [key=value ...]`.

Loss (per batch): kl * KL(q(z|x) || N(0, I)) + geodesic * mean joint rotation angle
+ joints * L1 of the 22 joint positions (forward kinematics on Anny's rest skeleton)
+ vertices * L1 of Anny's mesh on every `vertex_every`-th step (a sub-batch through the
real model: the full mesh costs ~0.4 s per 128 poses on CPU, too slow for every step).
Adam, ReduceLROnPlateau and early stopping on `val_loss` (the same loss on the
validation actors, decoding the posterior mean). Writes into `out_dir`: the resolved
config.yaml, snapshots/best-*.ckpt and last.ckpt (Lightning, model keys prefixed
`vp_model.` as in official VPoser v2), vposer.pt (best weights), logs/version_<run>/metrics.csv and
train_metrics.json, and the latent mixture of the training poses' codes (vposer_latent_gmm.npz,
`prior.vposer.latent_mixture`). `init_from` starts a new run from a VPoser's weights (fine-tuning, e.g. with another
loss mix; fresh optimiser and schedule; a resumed last.ckpt takes precedence). Runs on CPU or GPUs; set
train.devices / train.strategy=ddp to scale out.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, TensorDataset

import configs
from body.rotations import axis_angle_to_matrix, geodesic_angle, matrix_to_axis_angle
from configs.files import atomic_path, write_text
from prior.data.fk import RestSkeleton, rest_joints
from prior.data.splits import load_splits
from prior.vposer.checkpoint import best_snapshot, export_run, load, save_weights
from prior.vposer.config import RUN_METRICS, RUN_WEIGHTS, load_config
from prior.vposer.latent_mixture import SUFFIX, fit_and_save, mixture_path, poses_needed
from prior.vposer.model import VPoser


class VPoserTraining(L.LightningModule):
    """Lightning wrapper: the VPoser is `vp_model`, as in the official v2 trainer."""

    def __init__(self, cfg: DictConfig, rest: torch.Tensor, body_model: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.vp_model = VPoser(cfg.model.num_neurons, cfg.model.latent_dim)
        self.skeleton = RestSkeleton(rest)
        # Kept out of the module tree so its buffers stay out of checkpoints.
        self._body = (body_model,)

    def losses(
        self, pose: torch.Tensor, q_z: torch.distributions.Normal, rotmat: torch.Tensor, with_vertices: bool
    ) -> dict[str, torch.Tensor]:
        """Unweighted loss terms for target poses (N, 21, 3), the posterior and decoded rotations."""
        target = axis_angle_to_matrix(pose)
        prior = torch.distributions.Normal(torch.zeros_like(q_z.mean), torch.ones_like(q_z.stddev))
        terms = {
            "kl": torch.distributions.kl_divergence(q_z, prior).sum(-1).mean(),
            "geodesic": geodesic_angle(rotmat, target).mean(),
            "joints": (self.skeleton(rotmat) - self.skeleton(target)).abs().mean(),
        }
        if with_vertices:
            body, k = self._body[0], self.cfg.loss.vertex_batch
            with torch.no_grad():
                verts = body(body_pose=pose[:k]).vertices
            terms["vertices"] = (body(body_pose=matrix_to_axis_angle(rotmat[:k])).vertices - verts).abs().mean()
        return terms

    def weighted(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.cfg.loss[name] * value for name, value in terms.items())

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        pose = batch[0]
        every = self.cfg.loss.vertex_every
        use_vertices = self._body[0] is not None and every > 0 and self.global_step % every == 0
        q_z = self.vp_model.encode(pose)
        terms = self.losses(pose, q_z, self.vp_model.decode_rotmat(q_z.rsample()), use_vertices)
        loss = self.weighted(terms)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(pose))
        self.log_dict(
            {f"train_{k}": v for k, v in terms.items() if k != "vertices"},
            on_step=False,
            on_epoch=True,
            sync_dist=True,
            batch_size=len(pose),
        )
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        pose = batch[0]
        q_z = self.vp_model.encode(pose)
        rotmat = self.vp_model.decode_rotmat(q_z.mean)
        terms = self.losses(pose, q_z, rotmat, with_vertices=False)
        err = (self.skeleton(rotmat) - self.skeleton(axis_angle_to_matrix(pose))).norm(dim=-1).mean()
        n = len(pose)
        self.log("val_loss", self.weighted(terms), prog_bar=True, sync_dist=True, batch_size=n)
        self.log("val_mpjpe_mm", 1000.0 * err, prog_bar=True, sync_dist=True, batch_size=n)
        self.log("val_geodesic_deg", torch.rad2deg(terms["geodesic"]), sync_dist=True, batch_size=n)
        self.log("val_kl", terms["kl"], sync_dist=True, batch_size=n)

    def configure_optimizers(self) -> dict:
        t = self.cfg.train
        opt = torch.optim.Adam(self.vp_model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=t.lr_factor, patience=t.lr_patience)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss", "interval": "epoch"}}

    def on_fit_start(self) -> None:
        if self._body[0] is not None:
            self._body[0].to(self.device)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temporary file and renamed into place."""

    def save_checkpoint(self, checkpoint: dict, path: str | Path, storage_options: object | None = None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


def make_loaders(cfg: DictConfig) -> tuple[DataLoader, DataLoader, dict]:
    """Train / validation loaders over the pose dataset, and a summary of the data."""
    train_poses, val_poses, info = load_splits(cfg.data, seed=cfg.train.seed)
    t = cfg.train
    gen = torch.Generator().manual_seed(t.seed)
    train = DataLoader(
        TensorDataset(train_poses),
        batch_size=t.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=t.num_workers,
        generator=gen,
    )
    val = DataLoader(TensorDataset(val_poses), batch_size=4 * t.batch_size, num_workers=t.num_workers)
    return train, val, info


def train(cfg: DictConfig) -> Path | None:
    """Run training; returns the path of the best weights (`out_dir/vposer.pt`; None on DDP ranks > 0)."""
    L.seed_everything(cfg.train.seed, workers=True)
    if cfg.train.cpu_threads:
        torch.set_num_threads(cfg.train.cpu_threads)
    out = Path(cfg.out_dir)
    train_loader, val_loader, info = make_loaders(cfg)
    write_text(out / "config.yaml", OmegaConf.to_yaml(cfg))
    import body

    anny = body.create("anny")
    use_vertices = cfg.loss.vertex_every > 0 and cfg.loss.vertices > 0
    module = VPoserTraining(cfg, rest_joints(anny), anny if use_vertices else None)
    if cfg.init_from:
        module.vp_model.load_state_dict(load(cfg.init_from).state_dict())
    snapshots = out / "snapshots"
    checkpoint = ModelCheckpoint(
        dirpath=snapshots,
        filename="best-{epoch:03d}-{val_loss:.5f}",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        save_last=True,
    )
    t = cfg.train
    trainer = L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        precision=t.precision,
        max_epochs=t.max_epochs,
        max_time={"minutes": t.max_minutes} if t.max_minutes else None,
        callbacks=[
            checkpoint,
            EarlyStopping("val_loss", patience=t.early_stopping_patience, mode="min"),
            TQDMProgressBar(refresh_rate=t.progress_refresh),
        ],
        logger=CSVLogger(out, name="logs"),
        plugins=[AtomicCheckpointIO()],
        log_every_n_steps=min(50, len(train_loader)),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
    )
    last = snapshots / "last.ckpt"
    start = time.time()
    trainer.fit(
        module,
        train_loader,
        val_loader,
        ckpt_path=str(last) if cfg.resume and last.exists() else None,
        weights_only=True,
    )  # resume without unpickling code
    if not trainer.is_global_zero:
        return None
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else best_snapshot(out)
    model = load(best)
    weights = out / RUN_WEIGHTS
    save_weights(model, weights)
    metrics = {
        **info,
        "best_checkpoint": best.name,
        "best_val_loss": float(checkpoint.best_model_score or float("nan")),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "stopped_early": trainer.early_stopping_callback.stopped_epoch > 0,
        "wall_seconds_this_run": round(time.time() - start, 1),
    }
    write_text(out / RUN_METRICS, json.dumps(metrics, indent=2) + "\n")
    poses = train_loader.dataset.tensors[0]
    companions: list[str] = []
    if len(poses) >= poses_needed(model.latent_dim):
        fit_and_save(model, poses, mixture_path(weights), seed=cfg.train.seed, dataset=info["dataset"])
        companions = [f"{SUFFIX}.npz", f"{SUFFIX}.yaml"]
    else:
        print(f"no latent mixture: {len(poses)} training poses, {poses_needed(model.latent_dim)} needed")
    if cfg.export:
        export_run(out, Path(cfg.export), RUN_WEIGHTS, RUN_METRICS, companions)
    return weights


def main(argv: list[str] | None = None) -> None:
    example = "python -m prior.vposer.train data.fps=10 train.max_epochs=3"
    cfg = configs.command_line_config(load_config, "train_prior", __doc__.split("\n\n")[0], argv, example)
    path = train(cfg)
    if path is not None:
        print(f"best weights: {path}")


if __name__ == "__main__":
    main()
