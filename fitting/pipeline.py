"""A fitting run: inputs -> keypoints -> targets -> batched fits -> outputs, with resume and a summary.

`run` builds the parts (body model, pose space, fitter, detector, writer) and
hands them explicitly to the image batches here and to `fitting.video` for
videos and OpenPose sequences (`fitting.sequence`); data flows one way, from inputs to the writer.
`open_run` (the locked, logged output folder) and `fit_items` (a run's items, or any share of
them) are also what `fitting.scale_out` runs, on Ray workers.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from omegaconf import DictConfig

import body
import keypoints
from configs.files import TEMP_PREFIX, is_orphan_temporary
from fitting.config import save_config
from fitting.export import export_run
from fitting.fitter import Fitter
from fitting.inputs import Item, collect, load_item
from fitting.options import FitOptions
from fitting.outputs import OutputError, Scene, Summary, Writer, check_settings, error_text, folder_lock
from fitting.priors import load_pose_space
from fitting.progress import FrameBar
from fitting.report import write_report
from fitting.sequence import read_sequence
from fitting.video import fit_footage, fit_video

log = logging.getLogger(__name__)


class Detector:
    """MediaPipe in a worker process (a native crash fails one item, not the run), started on
    first use (OpenPose-only runs never load it)."""

    def __init__(self, holistic: bool) -> None:
        self.holistic = holistic
        self._detector: keypoints.IsolatedDetector | None = None

    def _worker(self) -> keypoints.IsolatedDetector:
        if self._detector is None:
            self._detector = keypoints.IsolatedDetector(holistic=self.holistic)
        return self._detector

    def __call__(self, image: np.ndarray, source: str = "") -> keypoints.Keypoints:
        return self._worker()(image, source)

    def track(
        self,
        video: Path,
        on_frame: Callable[[keypoints.Keypoints], None] | None = None,
        search_every: int | None = None,
    ) -> list[keypoints.Keypoints]:
        """The tracked person of every frame of a video, or with `search_every` every person
        (searched every that many frames); `on_frame` sees each frame as it arrives."""
        return self._worker().track(video, on_frame=on_frame, search_every=search_every)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()


def build_fitter(cfg: DictConfig) -> Fitter:
    """The body model, pose space and fitter `cfg` asks for."""
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    device = body.usable_device(cfg.device)
    model = body.create(cfg.body.model, model_path=cfg.body.model_path, gender=cfg.body.gender, device=device)
    return Fitter(model, load_pose_space(cfg.prior.kind, cfg.prior.path, device), FitOptions.of(cfg))


def write_thread(cfg: DictConfig, cpus: int | None = None) -> bool:
    """Whether the writer writes on its own thread (`output.write_thread`; null: when the fit leaves a CPU
    free: a fit on a GPU, or fewer torch threads than `cpus`, by default the CPUs this process may use).
    Beside a fit that uses every core the thread slows it by more than it saves (docs/throughput.md)."""
    if cfg.output.write_thread is not None:
        return bool(cfg.output.write_thread)
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return torch.device(cfg.device).type != "cpu" or torch.get_num_threads() < cpus


def run(
    path: Path,
    out: Path,
    cfg: DictConfig,
    images: Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    sequence_fps: float | None = None,
) -> Summary:
    """Fit everything under `path` into `out`; frames already fitted there with these settings are
    skipped (resume). `overwrite`: refit frames fitted with other settings. `sequence_fps`: `path` is
    a folder of OpenPose frames fitted as one video at this frame rate (`fitting.sequence`).
    Raises OutputError when another run holds `out` or `out` holds fits made with other settings."""
    start = time.perf_counter()
    with open_run(path, out, cfg, images, overwrite, sequence_fps) as (items, passed):
        fitter = build_fitter(cfg)
        writer = Writer(out, fitter.model, cfg, overwrite, background=write_thread(cfg))
        for name, reason in passed.items():
            writer.skip(name, reason)
        detector = Detector(cfg.keypoints.holistic)
        try:
            fit_items(items, detector, fitter, writer, cfg, progress)
        finally:  # also when interrupted: the summary of what was done
            detector.close()
            summary = writer.finish(time.perf_counter() - start)
        write_results(out, cfg)
    return summary


@contextmanager
def open_run(
    path: Path, out: Path, cfg: DictConfig, images: Path | None, overwrite: bool, sequence_fps: float | None
) -> Iterator[tuple[list[Item], dict[str, str]]]:
    """A run's items and the entries passed over with why (`fitting.inputs.collect`), inside the
    run's frame: `out` created and locked, run.log open, its settings checked against earlier fits,
    stale temporaries removed and config.yaml saved (`run`, and `fitting.scale_out` on Ray)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; give a folder")
    if images is not None and not images.is_dir():
        raise FileNotFoundError(f"--images {images}: no such folder")
    items, passed = collect(path, images, sequence_fps)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out), run_log(out):
        check_settings(out, cfg, overwrite)
        _remove_stale_temporaries(out)
        save_config(cfg, out / "config.yaml")
        log.info("fitting %s into %s: %d items", path, out, len(items))
        yield items, passed


def fit_items(
    items: list[Item], detector: Detector, fitter: Fitter, writer: Writer, cfg: DictConfig, progress: bool
) -> None:
    """Fit a run's items, or a share of them (a unit of work on a Ray worker): its images and OpenPose
    frames in batches (`fit_images`), then each video or sequence; an item that fails is recorded
    as failed and the others go on."""
    frames = [i for i in items if i.kind in ("image", "openpose")]
    if frames:
        fit_images(frames, detector, fitter, writer, cfg, progress)
    size = tuple(cfg.camera.image_size) if cfg.camera.image_size else None
    for item in (i for i in items if i.kind in ("video", "sequence")):
        try:
            if item.kind == "video":
                fit_video(item, detector.track, fitter, writer, cfg, progress)
            else:
                fit_footage(read_sequence(item, writer, size), fitter, writer, cfg, progress)
        except Exception as e:
            writer.fail(item.name, error_text(e), e)


def write_results(out: Path, cfg: DictConfig) -> None:
    """The run's exports (`output.export`) and report page (`output.report`); a failure of either is
    logged and leaves the fits as they are."""
    if cfg.output.export:
        try:
            written = export_run(out, cfg.output.export, cfg.output.units)
            log.info("exported %d file(s): %s", len(written), ", ".join(str(p.relative_to(out)) for p in written))
        except Exception as e:
            log.warning("export failed: %s", error_text(e), exc_info=True)
    if cfg.output.report:
        try:
            log.info("report: %s", write_report(out))
        except Exception as e:
            log.warning("report failed: %s", error_text(e), exc_info=True)


@contextmanager
def run_log(out: Path) -> Iterator[None]:
    """Log the run (with the tracebacks of failed items) to out/run.log, appending."""
    handler = logging.FileHandler(out / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    with logging_to(handler):
        yield


@contextmanager
def logging_to(handler: logging.Handler) -> Iterator[None]:
    """Send the log's INFO and above to `handler` (closed at the end) while the block runs."""
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    if level > logging.INFO:  # WARNING by default: let the run's INFO lines reach the handler
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _remove_stale_temporaries(out: Path) -> None:
    """Delete the temporary files a killed run left (configs.files.atomic_path names carry the writer's pid;
    a live process's, such as a concurrent run's write in progress, are kept)."""
    for tmp in out.rglob(f"{TEMP_PREFIX}*"):
        if is_orphan_temporary(tmp):
            tmp.unlink(missing_ok=True)


def fit_images(
    items: list[Item], detector: Detector, fitter: Fitter, writer: Writer, cfg: DictConfig, progress: bool
) -> None:
    """Images and OpenPose frames, every chosen person a row, in batches of about `cfg.batch_size`
    people (a frame's people always share a batch: one scene); each image is read once. A batch
    that fails is fitted again frame by frame, so one bad frame fails alone."""
    pending: list[Scene] = []
    bar = FrameBar(len(items), "fitting", progress)

    def fit(batch: list[Scene]) -> None:
        results = iter(fitter.fit_frames([p.targets for s in batch for p in s.people if p.targets is not None]))
        for scene in batch:
            scene.results = [next(results) for p in scene.people if p.targets is not None]
        writer.write(batch)

    def flush() -> None:
        if not pending:
            return
        try:
            fit(pending)
        except Exception as e:
            if len(pending) == 1:
                writer.fail(pending[0].key, f"fitting failed: {error_text(e)}", e)
            else:
                log.warning("a batch of %d frames failed (%s); fitting them one by one", len(pending), error_text(e))
                for one in pending:
                    try:
                        fit([one])
                    except Exception as e1:
                        writer.fail(one.key, f"fitting failed: {error_text(e1)}", e1)
        bar.update(len(pending))
        pending.clear()

    for item in items:
        if (saved := writer.saved_frame(item.name, item.path)) is not None:
            writer.record_saved(saved)
            bar.already_done()
            continue
        try:
            people, reason, image = load_item(item, detector, cfg)
        except Exception as e:
            writer.fail(item.name, error_text(e), e)
            bar.update(1)
            continue
        scene = Scene(item.name, item.path, people, [], image)
        if reason is not None or all(p.targets is None for p in people):
            if reason is not None:
                writer.skip(item.name, reason)
            else:
                writer.write([scene])  # reports why each person is not fitted
            bar.update(1)
            continue
        pending.append(scene)
        if sum(p.targets is not None for s in pending for p in s.people) >= cfg.batch_size:
            flush()
    flush()
    bar.close()
