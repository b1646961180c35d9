"""The schemas of the trainers' configs (configs/train_*.yaml, which hold the values and their
comments): the VPoser prior's, and the initialiser's and temporal lifter's, which share their run,
views, loss and train sections (`configs.loader` explains the fields)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

from configs.loader import setting

__all__ = ["InitialiserTraining", "LifterTraining", "VPoserTraining"]

_DEVICE = r"cpu|cuda(:\d+)?"
_PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")
_PRECISIONS += ("transformer-engine", "transformer-engine-float16", 64, 32, 16)


@dataclass
class Run:
    """The keys every trainer's config starts with."""

    name: str
    out_dir: str
    export: Optional[str]
    resume: bool


# train_prior.yaml


@dataclass
class VPoserData:
    mocap: str
    dataset: Optional[str]
    cache_dir: str
    fps: float = setting(gt=0)
    min_change_deg: float = setting(ge=0)
    mirror: bool
    val_subjects: Optional[List[str]]
    max_actor_poses: Optional[int] = setting(ge=1)
    max_dataset_poses: Optional[int] = setting(ge=1)
    max_train_poses: Optional[int] = setting(ge=1)
    max_val_poses: Optional[int] = setting(ge=1)


@dataclass
class VPoserModel:
    num_neurons: int = setting(ge=1)
    latent_dim: int = setting(ge=1)


@dataclass
class VPoserLoss:
    kl: float = setting(ge=0)
    geodesic: float = setting(ge=0)
    joints: float = setting(ge=0)
    vertices: float = setting(ge=0)
    vertex_every: int = setting(ge=0)
    vertex_batch: int = setting(ge=1)


@dataclass
class VPoserTrain:
    seed: int = setting(ge=0)
    batch_size: int = setting(ge=1)
    lr: float = setting(gt=0)
    weight_decay: float = setting(ge=0)
    lr_factor: float = setting(gt=0, lt=1)
    lr_patience: int = setting(ge=0)
    early_stopping_patience: int = setting(ge=0)
    max_epochs: int = setting(ge=1)
    max_minutes: Optional[float] = setting(gt=0)
    num_workers: int = setting(ge=0)
    cpu_threads: Optional[int] = setting(ge=1)
    accelerator: str = setting(choices=("auto", "cpu", "gpu", "cuda", "mps", "tpu"))
    devices: Any = setting(
        test=lambda v: isinstance(v, (int, str, list)) and not isinstance(v, bool),
        means="an integer, a string or a list",
    )
    strategy: str
    precision: Any = setting(choices=_PRECISIONS)
    progress_refresh: int = setting(ge=0)


@dataclass
class VPoserTraining(Run):
    """configs/train_prior.yaml (python -m prior.vposer.train)."""

    init_from: Optional[str]
    data: VPoserData
    model: VPoserModel
    loss: VPoserLoss
    train: VPoserTrain


# What train_initialiser.yaml and train_temporal_lifter.yaml share


@dataclass
class StepViews:
    """Random cameras and detector-like corruption."""

    roll_deg: float = setting(ge=0)
    fov_deg: List[float] = setting(gt=0, lt=180)
    box_fraction: List[float] = setting(gt=0)
    centre_spread: float = setting(ge=0, le=1)
    noise: float = setting(ge=0)
    drop: float = setting(ge=0, lt=1)
    outlier: float = setting(ge=0, le=1)
    swap_all: float = setting(ge=0, le=1)
    swap_one: float = setting(ge=0, le=1)


@dataclass
class StepLoss:
    joints: float = setting(ge=0)
    rotations: float = setting(ge=0)
    shape: float = setting(ge=0)


@dataclass
class StepTrain:
    seed: int = setting(ge=0)
    batch_size: int = setting(ge=2)
    lr: float = setting(gt=0)
    weight_decay: float = setting(ge=0)
    steps: int = setting(ge=1)
    max_minutes: Optional[float] = setting(gt=0)
    val_every: int = setting(ge=1)
    cpu_threads: Optional[int] = setting(ge=1)
    device: str = setting(pattern=_DEVICE, means="cpu, cuda or cuda:N")


# train_initialiser.yaml


@dataclass
class InitialiserData:
    dataset: Optional[str]
    max_train_poses: Optional[int] = setting(ge=1)
    val_views: int = setting(ge=1)


@dataclass
class InitialiserViews(StepViews):
    elevation_deg: List[float] = setting(ge=-90, le=90)


@dataclass
class InitialiserModel:
    width: int = setting(ge=1)
    blocks: int = setting(ge=0)
    dropout: float = setting(ge=0, lt=1)
    hypotheses: int = setting(ge=1)


@dataclass
class InitialiserLoss(StepLoss):
    others: float = setting(ge=0, lt=1)
    choice: float = setting(ge=0)


@dataclass
class InitialiserTraining(Run):
    """configs/train_initialiser.yaml (python -m prior.initialiser.train)."""

    init_from: Optional[str]
    data: InitialiserData
    views: InitialiserViews
    model: InitialiserModel
    loss: InitialiserLoss
    train: StepTrain


# train_temporal_lifter.yaml


@dataclass
class LifterData:
    sequences: str
    mocap: str
    max_train_frames: Optional[int] = setting(ge=1)
    val_windows: int = setting(ge=1)


@dataclass
class LifterViews(StepViews):
    fps: List[float] = setting(gt=0, le=240)
    camera_height: List[float] = setting(ge=0)
    track: float = setting(ge=0, le=1)
    drift: float = setting(ge=0)
    jitter: float = setting(ge=0)
    bursts: float = setting(ge=0, le=1)
    burst_frames: float = setting(ge=1)
    gap: float = setting(ge=0, le=1)
    ends: float = setting(ge=0, le=1)


@dataclass
class LifterModel:
    width: int = setting(ge=1)
    dilations: List[int] = setting(ge=1)
    dropout: float = setting(ge=0, lt=1)
    causal: bool


@dataclass
class LifterLoss(StepLoss):
    velocity: float = setting(ge=0)
    root_xy: float = setting(ge=0)
    depth: float = setting(ge=0)


@dataclass
class LifterTrain(StepTrain):
    frames: int = setting(ge=2)


@dataclass
class LifterTraining(Run):
    """configs/train_temporal_lifter.yaml (python -m prior.initialiser.temporal_train)."""

    initialiser: Optional[str]
    data: LifterData
    views: LifterViews
    model: LifterModel
    loss: LifterLoss
    train: LifterTrain
