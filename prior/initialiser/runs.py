"""What the initialiser's and the temporal lifter's trainers share (their configs' common sections
are in configs.training): the resumable state of a run (out_dir/last.pt), written atomically at
each validation."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from configs.files import atomic_path


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
