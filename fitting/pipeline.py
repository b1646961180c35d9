"""A fitting run: inputs -> keypoints -> batched fits -> outputs, with resume and a summary."""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

import body
from body.io import is_orphan_temporary
import keypoints
from fitting.config import save_config
from fitting.fitter import Fitter, FitResult, FrameTargets
from fitting.inputs import Item, collect, load_item
from fitting.outputs import Summary, full_params, is_done, posed_vertices, write_frame
from fitting.priors import load_pose_space



class Session:
    """The model, pose prior, fitter and (on first use) the detector of a run."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        device = torch.device(cfg.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={cfg.device} but torch sees no CUDA GPU; use --device cpu")
        self.model = body.create(cfg.body.model, model_path=cfg.body.model_path, gender=cfg.body.gender, device=device)
        self.space = load_pose_space(cfg.prior.kind, cfg.prior.path, device)
        self.fitter = Fitter(self.model, self.space, cfg)
        self.faces = self.model.faces.cpu().numpy()
        self._detector: keypoints.MediaPipeDetector | None = None

    def detect(self, image: np.ndarray, source: str = "") -> keypoints.Keypoints:
        """MediaPipe on one BGR image (the detector is created on first use)."""
        if self._detector is None:
            self._detector = keypoints.MediaPipeDetector(holistic=self.cfg.keypoints.holistic)
        return self._detector(image, source=source)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()

    def write(self, out: Path, named: list[tuple[str, FitResult, FrameTargets]], images: list[np.ndarray | None],
              summary: Summary) -> None:
        """Meshes, overlays and npz of fitted frames; a diverged fit is reported as failed."""
        ok = [i for i, (_, r, _) in enumerate(named) if r.is_finite()]
        for i in set(range(len(named))) - set(ok):
            summary.failed[named[i][0]] = "optimisation diverged (non-finite loss or parameters)"
        if not ok:
            return
        params = [full_params(self.model, named[i][1].params) for i in ok]
        vertices = posed_vertices(self.model, params)
        out_cfg = self.cfg.output
        for j, i in enumerate(ok):
            name, result, frame = named[i]
            result.params = params[j]
            rgb = None if images[i] is None else cv2.cvtColor(images[i], cv2.COLOR_BGR2RGB)
            try:
                err = write_frame(out, name, result, frame, vertices[j], self.faces, rgb, self.cfg.body.model,
                                  self.cfg.prior.kind, mesh=out_cfg.mesh, overlay=out_cfg.overlay)
            except Exception as e:
                summary.failed[name] = f"writing outputs failed: {_error_text(e)}"
                continue
            summary.failed.pop(name, None)  # a video frame that diverged in one window, fitted in the next
            summary.fitted.append(name)
            summary.reprojection_px[name] = err["reprojection_px"]
            summary.reprojection_rel[name] = err["reprojection_rel"]


def run(path: Path, out: Path, cfg: DictConfig, images: Path | None = None, progress: bool = True) -> Summary:
    """Fit everything under `path` into `out`; frames whose .npz exists are skipped (resume)."""
    from fitting.video import fit_video

    start = time.perf_counter()
    items, passed = collect(path, images)
    summary = Summary(skipped=dict(passed))
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out)
    save_config(cfg, out / "config.yaml")
    session = Session(cfg)
    try:
        frames = [i for i in items if i.kind != "video"]
        if frames:
            _fit_images(frames, out, session, summary, progress)
        for item in (i for i in items if i.kind == "video"):
            try:
                fit_video(item, out, session, summary, progress)
            except Exception as e:
                summary.failed[item.name] = _error_text(e)
    finally:  # also when interrupted: the summary of what was done
        session.close()
        summary.seconds = time.perf_counter() - start
        summary.write(out / "summary.json")
    return summary


def _error_text(e: Exception) -> str:
    """How an item's error is reported. Any error of one frame, batch or video (unreadable or truncated
    files, failed fits, rendering) fails that item only; KeyboardInterrupt is no Exception and stops the run."""
    return f"{type(e).__name__}: {e}"


def _remove_stale_temporaries(out: Path) -> None:
    """Delete the temporary files a killed run left (body.io.atomic_path names carry the writer's pid;
    a live process's, such as a concurrent run's write in progress, are kept)."""
    for tmp in out.glob(".*"):
        if is_orphan_temporary(tmp):
            tmp.unlink(missing_ok=True)


def _fit_images(items: list[Item], out: Path, session: Session, summary: Summary, progress: bool) -> None:
    """Images and OpenPose frames in batches of `cfg.batch_size`."""
    pending: list[tuple[Item, FrameTargets]] = []
    bar = tqdm(total=len(items), unit="frame", desc="fitting", disable=not progress)

    def flush() -> None:
        if not pending:
            return
        try:
            results = session.fitter.fit_frames([t for _, t in pending])
            images = [_overlay_image(item) for item, _ in pending]
            session.write(out, [(item.name, r, t) for (item, t), r in zip(pending, results)], images, summary)
        except Exception as e:
            for item, _ in pending:
                summary.failed[item.name] = f"fitting failed: {_error_text(e)}"
        bar.update(len(pending))
        pending.clear()

    for item in items:
        if is_done(out, item.name):
            summary.already_done.append(item.name)
            bar.update(1)
            continue
        try:
            targets, reason, _ = load_item(item, session.detect, session.cfg)
        except Exception as e:
            summary.failed[item.name] = _error_text(e)
            bar.update(1)
            continue
        if targets is None:
            summary.skipped[item.name] = reason
            bar.update(1)
            continue
        pending.append((item, targets))
        if len(pending) >= session.cfg.batch_size:
            flush()
    flush()
    bar.close()


def _overlay_image(item: Item) -> np.ndarray | None:
    """The image to draw a frame's overlay on (read again rather than held during the fit)."""
    path = item.path if item.kind == "image" else item.image
    if path is None:
        return None
    try:
        return keypoints.read_image(path)
    except keypoints.KeypointsError:
        return None
