"""A fitting run: inputs -> keypoints -> targets -> batched fits -> outputs, with resume and a summary.

`run` builds the parts (body model, pose space, fitter, detector, writer) and
hands them explicitly to the image batches here and to `fitting.video` for
videos; data flows one way, from inputs to the writer.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

import body
import keypoints
from body.io import is_orphan_temporary
from fitting.config import save_config
from fitting.fitter import Fitter
from fitting.inputs import Item, collect, load_item
from fitting.outputs import Summary, Writer, error_text
from fitting.priors import load_pose_space
from fitting.targets import FrameTargets
from fitting.video import fit_video


class Detector:
    """MediaPipe on one BGR image, created on first use (OpenPose-only runs never load it)."""

    def __init__(self, holistic: bool) -> None:
        self.holistic = holistic
        self._detector: keypoints.MediaPipeDetector | None = None

    def __call__(self, image: np.ndarray, source: str = "") -> keypoints.Keypoints:
        if self._detector is None:
            self._detector = keypoints.MediaPipeDetector(holistic=self.holistic)
        return self._detector(image, source=source)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()


def build_fitter(cfg: DictConfig) -> Fitter:
    """The body model, pose space and fitter `cfg` asks for."""
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={cfg.device} but torch sees no CUDA GPU; use --device cpu")
    model = body.create(cfg.body.model, model_path=cfg.body.model_path, gender=cfg.body.gender, device=device)
    return Fitter(model, load_pose_space(cfg.prior.kind, cfg.prior.path, device), cfg)


def run(path: Path, out: Path, cfg: DictConfig, images: Path | None = None, progress: bool = True) -> Summary:
    """Fit everything under `path` into `out`; frames whose .npz exists are skipped (resume)."""
    start = time.perf_counter()
    items, passed = collect(path, images)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    save_config(cfg, out / "config.yaml")
    fitter = build_fitter(cfg)
    writer = Writer(out, fitter.model, cfg)
    for name, reason in passed.items():
        writer.skip(name, reason)
    detector = Detector(cfg.keypoints.holistic)
    try:
        frames = [i for i in items if i.kind != "video"]
        if frames:
            fit_images(frames, detector, fitter, writer, cfg, progress)
        for item in (i for i in items if i.kind == "video"):
            try:
                fit_video(item, fitter, writer, cfg, progress)
            except Exception as e:
                writer.fail(item.name, error_text(e))
    finally:  # also when interrupted: the summary of what was done
        detector.close()
        summary = writer.finish(time.perf_counter() - start)
    return summary


def _remove_stale_temporaries(out: Path) -> None:
    """Delete the temporary files a killed run left (body.io.atomic_path names carry the writer's pid;
    a live process's, such as a concurrent run's write in progress, are kept)."""
    for tmp in out.glob(".*"):
        if is_orphan_temporary(tmp):
            tmp.unlink(missing_ok=True)


def fit_images(
    items: list[Item], detector: Detector, fitter: Fitter, writer: Writer, cfg: DictConfig, progress: bool
) -> None:
    """Images and OpenPose frames in batches of `cfg.batch_size`; each image is read once."""
    pending: list[tuple[Item, FrameTargets, np.ndarray | None]] = []
    bar = tqdm(total=len(items), unit="frame", desc="fitting", disable=not progress)

    def flush() -> None:
        if not pending:
            return
        try:
            results = fitter.fit_frames([t for _, t, _ in pending])
            writer.write([(item.name, r, t, image) for (item, t, image), r in zip(pending, results)])
        except Exception as e:
            for item, _, _ in pending:
                writer.fail(item.name, f"fitting failed: {error_text(e)}")
        bar.update(len(pending))
        pending.clear()

    for item in items:
        if writer.is_done(item.name):
            bar.update(1)
            continue
        try:
            targets, reason, image = load_item(item, detector, cfg)
        except Exception as e:
            writer.fail(item.name, error_text(e))
            bar.update(1)
            continue
        if targets is None:
            writer.skip(item.name, reason)
            bar.update(1)
            continue
        pending.append((item, targets, image))
        if len(pending) >= cfg.batch_size:
            flush()
    flush()
    bar.close()
