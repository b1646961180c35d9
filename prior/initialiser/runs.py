"""What the initialiser's and the temporal lifter's trainers share: the config rules of their
common settings, and the resumable state of a run (out_dir/last.pt), written atomically at each
validation."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from configs.files import atomic_path
from configs.loader import Rule

# The config rules both trainers' YAMLs share (each adds its own: data, views, model).
STEP_TRAINING_RULES: dict[str, Rule] = {
    "export": Rule(type=str),
    "views.fov_deg.*": Rule(gt=0, lt=180),
    "views.box_fraction.*": Rule(gt=0),
    "views.roll_deg": Rule(ge=0),
    "views.centre_spread": Rule(ge=0, le=1),
    "views.noise": Rule(ge=0),
    "views.drop": Rule(ge=0, lt=1),
    "views.outlier": Rule(ge=0, le=1),
    "views.swap_all": Rule(ge=0, le=1),
    "views.swap_one": Rule(ge=0, le=1),
    "model.width": Rule(ge=1),
    "model.dropout": Rule(ge=0, lt=1),
    "loss.*": Rule(ge=0),
    "train.seed": Rule(ge=0),
    "train.batch_size": Rule(ge=2),
    "train.lr": Rule(gt=0),
    "train.weight_decay": Rule(ge=0),
    "train.steps": Rule(ge=1),
    "train.max_minutes": Rule(type=float, gt=0, nullable=True),
    "train.val_every": Rule(ge=1),
    "train.cpu_threads": Rule(ge=1, nullable=True),
    "train.device": Rule(pattern=r"cpu|cuda(:\d+)?"),
}


def save_progress(
    path: Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    step: int,
    history: list[dict],
    **extra: object,
) -> None:
    """The run so far: model, optimiser and sampling-generator states, step and history, and `extra`
    entries (a scheduler's state, minutes trained)."""
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "generator": gen.get_state(),
        "step": step,
        "history": json.dumps(history),
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def resume(
    path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator, device: torch.device
) -> tuple[int, list[dict], dict]:
    """Restore what `save_progress` wrote into `model`, `opt` and `gen`; returns the step, the
    history and the whole state (for its extra entries)."""
    state = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    gen.set_state(state["generator"])
    step = int(state["step"])
    print(f"resumed at step {step}")
    return step, json.loads(state["history"]), state
