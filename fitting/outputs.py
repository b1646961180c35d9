"""Per-frame outputs (npz, obj, overlay png), resume checks and the run summary.

Every file is written atomically; a frame's .npz is written last, so a frame
counts as done exactly when its .npz exists (a killed run leaves no partial
files and redoes only frames without one). A run's `Writer` is the one place
that writes outputs and records what happened to each frame in its `Summary`.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from body.base import BodyModel
from body.io import write_image, write_npz, write_obj, write_text
from fitting.fitter import FitResult
from fitting.metrics import reprojection_error
from fitting.targets import BODY, FrameTargets, part_of

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


def frame_paths(out_dir: Path, name: str) -> dict[str, Path]:
    return {"npz": out_dir / f"{name}.npz", "obj": out_dir / f"{name}.obj", "png": out_dir / f"{name}_overlay.png"}


def is_done(out_dir: Path, name: str) -> bool:
    """Whether the frame's .npz exists and opens; a truncated or unreadable one is fitted again."""
    try:
        with np.load(frame_paths(out_dir, name)["npz"], allow_pickle=False):
            return True
    except (OSError, EOFError, ValueError, zipfile.BadZipFile):
        return False


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
    """Mean reprojection error over the body keypoints used: (px, fraction of the person's height)."""
    used = [n for n in frame.points if n in result.projected and part_of(n) == BODY]
    if not used:
        return float("nan"), float("nan")
    return reprojection_error(
        np.concatenate([result.projected[n] for n in used]),
        np.concatenate([frame.points[n][0] for n in used]),
        np.concatenate([frame.points[n][1] for n in used]),
    )


def write_frame(
    out_dir: Path,
    name: str,
    result: FitResult,
    frame: FrameTargets,
    vertices: np.ndarray,
    faces: np.ndarray,
    image: np.ndarray | None,
    model_name: str,
    prior_kind: str,
    mesh: bool = True,
    overlay: bool = True,
) -> dict[str, float]:
    """Write one frame's obj, overlay and (last) npz; returns its reprojection error."""
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
        body_model=np.asarray(model_name),
        pose_prior=np.asarray(prior_kind),
        loss_terms=np.asarray(json.dumps({k: round(v, 4) for k, v in result.terms.items()})),
    )
    for set_name, (points, weights) in frame.points.items():
        arrays[f"keypoints_{set_name}"] = points.astype(np.float32)
        arrays[f"weights_{set_name}"] = weights.astype(np.float32)
        if set_name in result.projected:
            arrays[f"projected_{set_name}"] = result.projected[set_name].astype(np.float32)
    write_npz(paths["npz"], **arrays)
    return {"reprojection_px": px, "reprojection_rel": rel}


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
    """Writes a run's frames into `out` and records each frame's fate in `summary`."""

    def __init__(self, out: Path, model: BodyModel, cfg: DictConfig) -> None:
        self.out = out
        self.model = model
        self.faces = model.faces.cpu().numpy()
        self.options = cfg.output
        self.model_name, self.prior_kind = cfg.body.model, cfg.prior.kind
        self.summary = Summary()

    def is_done(self, name: str) -> bool:
        """Whether the frame was finished by an earlier run (and records it as such)."""
        done = is_done(self.out, name)
        if done:
            self.summary.already_done.append(name)
        return done

    def skip(self, name: str, reason: str) -> None:
        self.summary.skipped[name] = reason

    def fail(self, name: str, error: str) -> None:
        self.summary.failed[name] = error

    def saved_params(self, name: str) -> dict[str, np.ndarray]:
        return load_frame_params(self.out, name)

    def write(self, frames: list[tuple[str, FitResult, FrameTargets, np.ndarray | None]]) -> None:
        """Meshes, overlays and npz of fitted frames (name, result, targets, BGR image or None);
        a diverged fit is reported as failed."""
        ok = [f for f in frames if f[1].is_finite()]
        for name, *_ in frames:
            if not any(name == f[0] for f in ok):
                self.fail(name, "optimisation diverged (non-finite loss or parameters)")
        if not ok:
            return
        params = [full_params(self.model, r.params) for _, r, _, _ in ok]
        vertices = posed_vertices(self.model, params)
        for (name, result, frame, image), p, verts in zip(ok, params, vertices):
            result.params = p
            rgb = None if image is None else np.ascontiguousarray(image[..., ::-1])
            try:
                err = write_frame(
                    self.out,
                    name,
                    result,
                    frame,
                    verts,
                    self.faces,
                    rgb,
                    self.model_name,
                    self.prior_kind,
                    mesh=self.options.mesh,
                    overlay=self.options.overlay,
                )
            except Exception as e:
                self.fail(name, f"writing outputs failed: {error_text(e)}")
                continue
            self.summary.failed.pop(name, None)  # a video frame that diverged in one window, fitted in the next
            self.summary.fitted.append(name)
            self.summary.reprojection_px[name] = err["reprojection_px"]
            self.summary.reprojection_rel[name] = err["reprojection_rel"]

    def finish(self, seconds: float) -> Summary:
        """Write summary.json (also after an interruption) and return the summary."""
        self.summary.seconds = seconds
        self.summary.write(self.out / "summary.json")
        return self.summary


def error_text(e: Exception) -> str:
    """How an item's error is reported. Any error of one frame, batch or video (unreadable or truncated
    files, failed fits, rendering) fails that item only; KeyboardInterrupt is no Exception and stops the run."""
    return f"{type(e).__name__}: {e}"
