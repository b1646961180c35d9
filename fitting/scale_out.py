"""The fitting run on Ray workers: `run_fit.py INPUT --out DIR --ray [ADDRESS]` (docs/scale_out.md).

The driver (`run_on_ray`) opens the output folder as a local run does (`pipeline.open_run`: the
lock, run.log, the settings check, config.yaml), splits the items into units of work and hands
them to `FitWorker` actors, each of which loads the body model, pose prior and detector once and
fits its units with the local run's own code (`pipeline.fit_items`) into the same folder: the
same files, written atomically, resumed the same way (a unit's frames already done are skipped).
Units: each video or `--sequence` folder is one; images and OpenPose frames go in batches of
`batch_size` frames, smaller where that gives every worker one. Each unit returns its `Summary`
and its log records; the driver merges them in input order, so summary.json and run.log read as
a local run's, then writes the exports and report. A failed item fails alone, as locally; a
worker that dies fails its unit's items (a rerun resumes them).

Ray is imported only here, when asked for. Every worker must see the input and `--out` at the
same paths as the driver (one machine, or a shared file system on a cluster).
"""

from __future__ import annotations

import logging
import math
import os
import platform
import socket
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from tqdm import tqdm

from fitting.inputs import Item
from fitting.outputs import Summary, Writer, error_text
from fitting.pipeline import Detector, build_fitter, fit_items, logging_to, open_run, write_results, write_thread

log = logging.getLogger(__name__)

RAY_PIN = "ray==2.60.0"  # setup.cfg's `ray` extra


class ScaleOutError(ValueError):
    """Ray cannot run this fit as asked (not installed, no cluster at the address, too few CPUs or GPUs)."""


class FitWorker:
    """One Ray worker (actor): the fitter and detector, loaded once, fitting units into `out`."""

    def __init__(self, cfg: DictConfig, out: Path, overwrite: bool, cwd: str) -> None:
        self.cfg, self.out, self.overwrite = cfg, out, overwrite
        self.error: str | None = None
        try:
            if not Path(cwd).is_dir():
                raise FileNotFoundError(
                    f"the driver's folder {cwd} is not on this node; workers need the input and --out "
                    "at the driver's paths (a shared file system)"
                )
            os.chdir(cwd)  # relative input and output paths mean what they mean to the driver
            self.fitter = build_fitter(cfg)
            self.detector = Detector(cfg.keypoints.holistic)
        except Exception as e:
            self.error = f"worker on {platform.node()}: {error_text(e)}"

    def ready(self) -> str | None:
        """None once the models are loaded, else why they could not be."""
        return self.error

    def fit(self, items: list[Item]) -> tuple[Summary, list[logging.LogRecord]]:
        """Fit one unit; its summary and the log records it made (for the driver's run.log)."""
        if self.error:  # a restarted worker that could not load its models
            raise RuntimeError(self.error)
        background = write_thread(self.cfg, self.cfg.ray.threads_per_worker)  # beside the CPUs it reserves
        writer = Writer(self.out, self.fitter.model, self.cfg, self.overwrite, background)
        records = _Records()
        try:
            with logging_to(records):
                fit_items(items, self.detector, self.fitter, writer, self.cfg, progress=False)
        finally:
            writer.close()  # the unit's overlay renderer (the driver writes the run's summary)
        return writer.summary, records.records

    def close(self) -> None:
        self.detector.close()


class _Records(logging.Handler):
    """Keeps a worker's log records, made picklable (message formatted, traceback as text)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args, record.exc_info = record.getMessage(), None, None
        self.records.append(record)


def units(items: list[Item], batch_size: int, workers: int) -> list[list[Item]]:
    """Units of work in input order: images and OpenPose frames in batches of `batch_size` frames, or
    fewer so that each of `workers` gets one; then each video or sequence alone."""
    frames = [i for i in items if i.kind in ("image", "openpose")]
    size = max(1, min(batch_size, math.ceil(len(frames) / workers)))
    batches = [frames[k : k + size] for k in range(0, len(frames), size)]
    return batches + [[i] for i in items if i.kind in ("video", "sequence")]


def merge(into: Summary, part: Summary) -> None:
    """Add a unit's summary to the run's (lists extended, mappings updated; not the time)."""
    for f in fields(Summary):
        mine = getattr(into, f.name)
        if isinstance(mine, list):
            mine.extend(getattr(part, f.name))
        elif isinstance(mine, dict):
            mine.update(getattr(part, f.name))


def run_on_ray(
    path: Path,
    out: Path,
    cfg: DictConfig,
    address: str = "local",
    images: Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    sequence_fps: float | None = None,
) -> Summary:
    """`fitting.pipeline.run` on Ray workers (`cfg.ray`): `address` "local" starts Ray on this
    machine (unless this process already joined one), "auto" or "ray://HOST:10001" joins a running
    cluster. The same outputs, resume and summary. Raises ScaleOutError when Ray cannot provide the
    workers, and what `run` raises."""
    ray = _import_ray()
    if cfg.device.startswith("cuda") and cfg.ray.gpus_per_worker == 0:
        raise ScaleOutError(
            f"device={cfg.device} on Ray needs GPU workers: set ray.gpus_per_worker=1 (or 0.5 to share a GPU)"
        )
    if address not in ("local", "auto") and not ray.is_initialized():
        _check_reachable(address)
    start = time.perf_counter()
    with open_run(path, out, cfg, images, overwrite, sequence_fps) as (items, passed):
        summary = Summary()
        for name, reason in passed.items():
            summary.skipped[name] = reason
            log.info("skipped %s: %s", name, reason)
        started = _connect(ray, address, cfg)
        actors: list[Any] = []
        try:
            workers = _workers(ray, cfg)
            work = units(items, cfg.batch_size, workers)
            actors = _start_workers(ray, cfg, out, overwrite, min(workers, len(work)))
            done: dict[int, Summary] = {}
            try:
                _fit_units(ray, actors, work, done, progress)
                _close(ray, actors)
            finally:  # also when interrupted: the summary of what was done
                for i in sorted(done):
                    merge(summary, done[i])
                summary.seconds = time.perf_counter() - start
                summary.write(out / "summary.json")
        finally:
            for a in actors:
                ray.kill(a)
            if started:
                ray.shutdown()
        write_results(out, cfg)
    return summary


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ScaleOutError(f"--ray needs the ray package: .venv/bin/pip install '{RAY_PIN}'") from None
    return ray


def _connect(ray: Any, address: str, cfg: DictConfig) -> bool:
    """Join or start Ray; whether this call started it (then the run shuts it down)."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "configure_logging": True}
    try:
        if address == "local":
            threads = cfg.ray.threads_per_worker
            workers = cfg.ray.workers or max(1, (os.cpu_count() or 1) // threads)
            ray.init(num_cpus=workers * threads, include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ScaleOutError(f"--ray {address}: cannot join a Ray cluster ({first}); see docs/scale_out.md") from None
    return True


def _check_reachable(address: str) -> None:
    """Refuse a HOST:PORT or ray://HOST[:PORT] address where nothing listens (Ray itself retries for
    minutes)."""
    host, _, port = address.removeprefix("ray://").partition(":")
    try:
        socket.create_connection((host, int(port or 10001)), timeout=10).close()
    except OSError as e:
        raise ScaleOutError(f"--ray {address}: nothing answers there ({e}); is the cluster's head running?") from None


def _workers(ray: Any, cfg: DictConfig) -> int:
    """How many workers to start: `ray.workers`, or as many as the cluster's CPUs (and GPUs) hold."""
    threads, gpus = cfg.ray.threads_per_worker, cfg.ray.gpus_per_worker
    have = ray.cluster_resources()
    cpus, gpus_have = int(have.get("CPU", 0)), float(have.get("GPU", 0))
    fit = cpus // threads if not gpus else min(cpus // threads, int(gpus_have / gpus + 1e-9))
    workers = cfg.ray.workers or fit
    if workers < 1 or workers > fit:
        raise ScaleOutError(
            f"{workers} Ray worker(s) of ray.threads_per_worker={threads}, ray.gpus_per_worker={gpus:g} need "
            f"{workers * threads} CPUs and {workers * gpus:g} GPUs; the cluster has {cpus} and {gpus_have:g}: "
            "set ray.workers lower"
        )
    return workers


def _start_workers(ray: Any, cfg: DictConfig, out: Path, overwrite: bool, count: int) -> list[Any]:
    """`count` FitWorker actors with their models loaded; ScaleOutError if one could not load them."""
    threads = cfg.ray.threads_per_worker
    worker_cfg = cfg.copy()
    worker_cfg.threads = threads
    actor = ray.remote(FitWorker).options(num_cpus=threads, num_gpus=cfg.ray.gpus_per_worker, max_restarts=1)
    actors = [actor.remote(worker_cfg, out, overwrite, os.getcwd()) for _ in range(count)]
    errors = [e for e in ray.get([a.ready.remote() for a in actors]) if e]
    if errors:
        for a in actors:
            ray.kill(a)
        raise ScaleOutError(errors[0])
    log.info("%d Ray worker(s) of %d thread(s) ready", count, threads)
    return actors


def _fit_units(ray: Any, actors: list[Any], work: list[list[Item]], done: dict[int, Summary], progress: bool) -> None:
    """Keep every worker busy with one unit at a time until all are fitted; each finished unit's
    summary goes into `done` by its index, its log records into this run's log."""
    bar = tqdm(
        total=sum(len(u) for u in work), unit="item", desc=f"fitting on {len(actors)} workers", disable=not progress
    )
    queue = list(enumerate(work))
    running: dict[Any, tuple[int, Any]] = {}

    def submit(actor: Any) -> None:
        if queue:
            index, unit = queue.pop(0)
            running[actor.fit.remote(unit)] = (index, actor)

    for a in actors:
        submit(a)
    while running:
        (ref,), _ = ray.wait(list(running), num_returns=1)
        index, actor = running.pop(ref)
        try:
            part, records = ray.get(ref)
            for record in records:
                logging.getLogger(record.name).handle(record)
        except Exception as e:  # the worker died (or its outputs could not be sent): the unit's items fail
            part = Summary()
            reason = f"Ray worker failed: {(str(e).strip().splitlines() or [type(e).__name__])[0]}"
            for item in work[index]:
                part.failed[item.name] = reason
            log.error("a unit of %d item(s) failed on Ray: %s", len(work[index]), reason, exc_info=e)
        done[index] = part
        bar.update(len(work[index]))
        submit(actor)
    bar.close()


def _close(ray: Any, actors: list[Any]) -> None:
    """Close the workers' detector processes (a killed worker's see their pipe close and exit too)."""
    try:
        ray.get([a.close.remote() for a in actors], timeout=30)
    except Exception as e:
        log.warning("closing the Ray workers: %s", error_text(e))
