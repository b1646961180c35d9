"""Per-frame outputs (npz, obj, overlay png), resume checks, the folder lock and the run summary.

Outputs are keyed by the input's file name with its extension (`x.jpg` ->
`x.jpg.npz`, `x.jpg.obj`, `x.jpg.overlay.png`; a video's frames under its own
folder: `clip.avi/000012.npz`), so two inputs never share a key. Every file is
written atomically; a frame's .npz is written last and records the input it came
from and a digest of the settings that shape a fit, so a frame counts as done
exactly when its .npz opens and matches this run (a killed run leaves no partial
files and redoes only frames without one; a run with other settings never counts
old frames as its own). A run's `Writer` is the one place that writes outputs and
records what happened to each frame in its `Summary`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from body.base import BodyModel
from body.io import pid_alive, write_image, write_npz, write_obj, write_text
from fitting.fitter import FitResult
from fitting.metrics import reprojection_error
from fitting.targets import BODY, FrameTargets, part_of

log = logging.getLogger(__name__)

# Settings that do not change a fit: a rerun may change them and still resume.
RUN_ONLY_KEYS = ("device", "threads", "batch_size", "output")
LOCK_NAME = ".bodyfit.lock"

BODY_PARAMS = (
    "global_orient",
    "body_pose",
    "left_hand_pose",
    "right_hand_pose",
    "jaw_pose",
    "expression",
    "shape",
    "transl",
)


class OutputError(ValueError):
    """The output folder cannot be used as asked (locked by another run, or fitted with other settings)."""


def frame_paths(out_dir: Path, key: str) -> dict[str, Path]:
    return {"npz": out_dir / f"{key}.npz", "obj": out_dir / f"{key}.obj", "png": out_dir / f"{key}.overlay.png"}


def saved_stamp(out_dir: Path, key: str) -> dict[str, str] | None:
    """The input and settings digest recorded in a frame's .npz; None when it is missing,
    truncated or unreadable (then the frame is fitted again)."""
    try:
        with np.load(frame_paths(out_dir, key)["npz"], allow_pickle=False) as data:
            return {k: str(data[k]) if k in data.files else "" for k in ("input", "config_digest")}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile):
        return None


def fit_settings(cfg: DictConfig) -> dict:
    """The resolved settings that shape a fit (all but RUN_ONLY_KEYS)."""
    return {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k not in RUN_ONLY_KEYS}


def config_digest(cfg: DictConfig) -> str:
    return hashlib.sha256(json.dumps(fit_settings(cfg), sort_keys=True).encode()).hexdigest()[:16]


def check_settings(out_dir: Path, cfg: DictConfig, overwrite: bool) -> None:
    """Refuse a folder whose config.yaml holds other fit settings than `cfg` (unless `overwrite`)."""
    saved = out_dir / "config.yaml"
    if overwrite or not saved.is_file():
        return
    before = fit_settings(OmegaConf.load(saved))
    now = fit_settings(cfg)
    changed = sorted(_changed_keys(before, now))
    if changed:
        raise OutputError(
            f"{out_dir} holds fits made with other settings ({', '.join(changed[:6])}"
            f"{', ...' if len(changed) > 6 else ''} changed); pass --overwrite to refit them, or choose another --out"
        )


def _changed_keys(a: object, b: object, prefix: str = "") -> Iterator[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            yield from _changed_keys(a.get(k), b.get(k), f"{prefix}{k}.")
    elif a != b:
        yield prefix.rstrip(".")


@contextmanager
def folder_lock(out_dir: Path) -> Iterator[None]:
    """Hold `out_dir` for this run: a second run into the same folder is refused while this one lives
    (a lock left by a killed run is taken over)."""
    lock = out_dir / LOCK_NAME
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                owner = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and pid_alive(owner):
                raise OutputError(
                    f"{out_dir} is in use by another run (pid {owner}); wait for it to finish or choose another --out"
                ) from None
            lock.unlink(missing_ok=True)
    else:
        raise OutputError(f"{out_dir}: could not take the folder lock {LOCK_NAME}")
    with os.fdopen(fd, "w") as fh:
        fh.write(str(os.getpid()))
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def full_params(model: BodyModel, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All body parameters as axis-angle arrays, zeros for the parts that were not fitted."""
    out = {
        "left_hand_pose": np.zeros((15, 3), np.float32),
        "right_hand_pose": np.zeros((15, 3), np.float32),
        "jaw_pose": np.zeros(3, np.float32),
    }
    if model.num_expression:
        out["expression"] = np.zeros(model.num_expression, np.float32)
    out.update({k: v.astype(np.float32) for k, v in params.items()})
    return out


def posed_vertices(model: BodyModel, params: list[dict[str, np.ndarray]]) -> np.ndarray:
    """(N, V, 3) full meshes in camera coordinates for fitted parameters."""
    keys = [k for k in BODY_PARAMS if k in params[0]]
    with torch.no_grad():
        kw = {
            k: torch.as_tensor(np.stack([p[k] for p in params]), device=model.device, dtype=model.dtype) for k in keys
        }
        return model(**kw).vertices.cpu().numpy()


def frame_reprojection(result: FitResult, frame: FrameTargets) -> tuple[float, float]:
    """Mean reprojection error over the body keypoints used: (px, fraction of the person's height);
    over the confident detections, or over all used ones when none is confident."""
    used = [n for n in frame.points if n in result.projected and part_of(n) == BODY]
    if not used:
        return float("nan"), float("nan")
    projected = np.concatenate([result.projected[n] for n in used])
    points = np.concatenate([frame.points[n][0] for n in used])
    weights = np.concatenate([frame.points[n][1] for n in used])
    px, rel = reprojection_error(projected, points, weights)
    if not np.isfinite(px):
        px, rel = reprojection_error(projected, points, weights, min_confidence=1e-6)
    return px, rel


def write_frame(
    out_dir: Path,
    name: str,
    result: FitResult,
    frame: FrameTargets,
    vertices: np.ndarray,
    faces: np.ndarray,
    image: np.ndarray | None,
    stamp: dict[str, str],
    mesh: bool = True,
    overlay: bool = True,
) -> None:
    """Write one frame's obj, overlay and (last) npz; `stamp`: strings saved as they are
    (input, config_digest, body_model, pose_prior)."""
    from body.render import render_overlay

    paths = frame_paths(out_dir, name)
    if mesh:
        write_obj(paths["obj"], vertices, faces)
    if overlay:
        write_image(paths["png"], render_overlay(vertices, faces, frame.focal, frame.center, frame.image_size, image))
    px, rel = frame_reprojection(result, frame)
    arrays: dict[str, np.ndarray] = {k: np.asarray(v, np.float32) for k, v in result.params.items()}
    arrays.update(
        focal=np.asarray(frame.focal, np.float32),
        center=np.asarray(frame.center, np.float32),
        image_size=np.asarray(frame.image_size, np.int32),
        camera_rotation=np.eye(3, dtype=np.float32),
        camera_translation=np.zeros(3, np.float32),
        stage_losses=result.stage_losses.astype(np.float32),
        stage_iterations=result.iterations.astype(np.int32),
        start_global_orient=result.start_orient.astype(np.float32),
        hypothesis=np.int32(result.hypothesis),
        hypothesis_losses=np.asarray(result.hypothesis_losses, np.float32),
        hypothesis_names=np.asarray(result.hypothesis_names, dtype=str),
        reprojection_px=np.float32(px),
        reprojection_rel=np.float32(rel),
        dropped_keypoints=np.int32(frame.dropped),
        loss_terms=np.asarray(json.dumps({k: round(v, 4) for k, v in result.terms.items()})),
    )
    for set_name, (points, weights) in frame.points.items():
        arrays[f"keypoints_{set_name}"] = points.astype(np.float32)
        arrays[f"weights_{set_name}"] = weights.astype(np.float32)
        if set_name in result.projected:
            arrays[f"projected_{set_name}"] = result.projected[set_name].astype(np.float32)
    arrays.update({k: np.asarray(v) for k, v in stamp.items()})
    write_npz(paths["npz"], **arrays)


def load_frame_params(out_dir: Path, name: str) -> dict[str, np.ndarray]:
    """The body parameters (and latent) saved for a frame."""
    with np.load(frame_paths(out_dir, name)["npz"], allow_pickle=False) as data:
        return {k: data[k] for k in (*BODY_PARAMS, "latent") if k in data.files}


@dataclass
class Summary:
    """What happened to every frame of a run."""

    fitted: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    reprojection_px: dict[str, float] = field(default_factory=dict)
    reprojection_rel: dict[str, float] = field(default_factory=dict)
    dropped_keypoints: dict[str, int] = field(default_factory=dict)  # detections far outside the image, ignored
    seconds: float = 0.0

    def to_dict(self) -> dict:
        px = [v for v in self.reprojection_px.values() if np.isfinite(v)]
        rel = [v for v in self.reprojection_rel.values() if np.isfinite(v)]
        return {
            "counts": {
                "fitted": len(self.fitted),
                "already_done": len(self.already_done),
                "skipped": len(self.skipped),
                "failed": len(self.failed),
            },
            "seconds": round(self.seconds, 2),
            "mean_reprojection_px": _rounded(np.mean(px), 2) if px else None,
            "mean_reprojection_of_height": _rounded(np.mean(rel), 4) if rel else None,
            "fitted": self.fitted,
            "already_done": self.already_done,
            "skipped": self.skipped,
            "failed": self.failed,
            "reprojection_px": {k: _rounded(v, 2) for k, v in self.reprojection_px.items()},
            "dropped_keypoints": self.dropped_keypoints,
        }

    def write(self, path: Path) -> None:
        write_text(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")

    def report(self) -> str:
        d = self.to_dict()
        c = d["counts"]
        lines = [
            f"fitted {c['fitted']}, already done {c['already_done']}, skipped {c['skipped']}, "
            f"failed {c['failed']} in {d['seconds']:.1f} s"
        ]
        if d["mean_reprojection_px"] is not None:
            lines.append(
                f"mean reprojection error {d['mean_reprojection_px']:.1f} px "
                f"({100 * d['mean_reprojection_of_height']:.1f} % of person height)"
            )
        lines += [f"  skipped {k}: {v}" for k, v in self.skipped.items()]
        lines += [f"  FAILED {k}: {v}" for k, v in self.failed.items()]
        return "\n".join(lines)


def _rounded(value: float, digits: int) -> float | None:
    """A float for JSON: None for NaN or infinity (which JSON has no value for)."""
    return round(float(value), digits) if np.isfinite(value) else None


class Writer:
    """Writes a run's frames into `out` and records each frame's fate in `summary` (and run.log)."""

    def __init__(self, out: Path, model: BodyModel, cfg: DictConfig, overwrite: bool = False) -> None:
        self.out = out
        self.model = model
        self.faces = model.faces.cpu().numpy()
        self.options = cfg.output
        self.overwrite = overwrite
        self.stamp = {"config_digest": config_digest(cfg), "body_model": cfg.body.model, "pose_prior": cfg.prior.kind}
        self.summary = Summary()

    def is_done(self, key: str, source: Path) -> bool:
        """Whether an earlier run already fitted this frame from `source` with these settings (recorded
        as already done). A frame fitted from another input or with other settings is refitted with
        `overwrite`, else reported as failed and left as it is (also True: nothing to do)."""
        stamp = saved_stamp(self.out, key)
        if stamp is None:
            return False
        if stamp == {"input": str(source), "config_digest": self.stamp["config_digest"]}:
            self.summary.already_done.append(key)
            return True
        if self.overwrite:
            return False
        self.fail(
            key,
            f"{frame_paths(self.out, key)['npz']} holds a fit of {stamp['input'] or 'another input'} "
            "or with other settings; pass --overwrite to refit it",
        )
        return True

    def skip(self, key: str, reason: str) -> None:
        self.summary.skipped[key] = reason
        log.info("skipped %s: %s", key, reason)

    def fail(self, key: str, error: str, exc: BaseException | None = None) -> None:
        """Record a failed frame; run.log gets the traceback of `exc`."""
        self.summary.failed[key] = error
        log.error("failed %s: %s", key, error, exc_info=exc)

    def saved_params(self, key: str) -> dict[str, np.ndarray]:
        return load_frame_params(self.out, key)

    def write(self, frames: list[tuple[str, Path, FitResult, FrameTargets, np.ndarray | None]]) -> None:
        """Meshes, overlays and npz of fitted frames (key, input, result, targets, BGR image or None).
        A diverged fit, or one whose reprojection error is non-finite or above
        `output.max_reprojection` of the person's height, is reported as failed, not written."""
        ok = []
        for key, source, result, frame, image in frames:
            px, rel = frame_reprojection(result, frame)
            if not result.is_finite():
                self.fail(key, "optimisation diverged (non-finite loss or parameters)")
            elif not np.isfinite(px) or rel > self.options.max_reprojection:
                self.fail(
                    key,
                    f"fit rejected: reprojection error {px:.4g} px ({100 * rel:.3g} % of the person's "
                    f"height; at most {100 * self.options.max_reprojection:.3g} % accepted)",
                )
            else:
                ok.append((key, source, result, frame, image, px, rel))
        if not ok:
            return
        params = [full_params(self.model, f[2].params) for f in ok]
        vertices = posed_vertices(self.model, params)
        for (key, source, result, frame, image, px, rel), p, verts in zip(ok, params, vertices):
            result.params = p
            rgb = None if image is None else np.ascontiguousarray(image[..., ::-1])
            try:
                write_frame(
                    self.out,
                    key,
                    result,
                    frame,
                    verts,
                    self.faces,
                    rgb,
                    {**self.stamp, "input": str(source)},
                    mesh=self.options.mesh,
                    overlay=self.options.overlay,
                )
            except Exception as e:
                self.fail(key, f"writing outputs failed: {error_text(e)}", e)
                continue
            self.summary.failed.pop(key, None)  # a video frame that diverged in one window, fitted in the next
            self.summary.fitted.append(key)
            self.summary.reprojection_px[key] = px
            self.summary.reprojection_rel[key] = rel
            if frame.dropped:
                self.summary.dropped_keypoints[key] = frame.dropped

    def finish(self, seconds: float) -> Summary:
        """Write summary.json (also after an interruption) and return the summary."""
        self.summary.seconds = seconds
        self.summary.write(self.out / "summary.json")
        return self.summary


def error_text(e: Exception) -> str:
    """How an item's error is reported. Any error of one frame, batch or video (unreadable or truncated
    files, failed fits, rendering) fails that item only; KeyboardInterrupt is no Exception and stops the run."""
    return f"{type(e).__name__}: {e}"
