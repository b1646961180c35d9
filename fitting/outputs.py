"""Per-frame outputs (npz, obj, overlay png), resume checks, the folder lock and the run summary.

Outputs are keyed by the input's file name with its extension (`x.jpg` ->
`x.jpg.npz`, `x.jpg.obj`, `x.jpg.overlay.png`; a video's frames under its own
folder: `clip.avi/000012.npz`), so two inputs never share a key. A frame with
one chosen person writes under its key; a frame with several writes each
person's npz and obj under `KEY.person_<id>` (`person_key`; the id is the
person's index in the frame's detections, saved as `person_id`) and one
overlay `KEY.overlay.png` with every mesh. Every file is written atomically; a
frame's .npz files are written last and record the input they came from, a
digest of the settings that shape a fit and (`frame_people`) which people the
frame wrote and which it could not fit, so a frame counts as done exactly when
all its people's .npz open and match this run (a killed run leaves no partial
files and redoes only frames without them; a run with other settings never
counts old frames as its own). A run's `Writer` is the one place that writes
outputs and records what happened to each frame and person in its `Summary`.
"""

from __future__ import annotations

import glob
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
from configs.files import pid_alive, write_image, write_npz, write_obj, write_text
from fitting.fitter import FitResult
from fitting.metrics import reprojection_error
from fitting.targets import BODY, FrameTargets, PersonTargets, part_of

log = logging.getLogger(__name__)

# Settings that do not change a fit: a rerun may change them and still resume.
RUN_ONLY_KEYS = ("device", "threads", "batch_size", "output", "ray")
LOCK_NAME = ".bodyfit.lock"
PERSON_INFIX = ".person_"

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


def person_key(key: str, person_id: int) -> str:
    """The output key of person `person_id` of a frame with several people: `KEY.person_<id>`."""
    return f"{key}{PERSON_INFIX}{person_id}"


def output_key(key: str, person_id: int, per_person: bool) -> str:
    """A person's output key in a frame: `person_key` where outputs are per person, else the frame's own."""
    return person_key(key, person_id) if per_person else key


def person_outputs(out_dir: Path, key: str) -> list[Path]:
    """The per-person files (`KEY.person_<id>.npz` and `.obj`) of a frame that are on disk."""
    path = out_dir / key
    found = path.parent.glob(f"{glob.escape(path.name)}{PERSON_INFIX}*")
    return sorted(f for f in found if f.suffix in (".npz", ".obj") and f.stem.rsplit("_", 1)[-1].isdigit())


def saved_stamp(out_dir: Path, key: str) -> dict[str, str] | None:
    """The input, settings digest and frame's people record (`frame_people`, JSON) saved in an
    output's .npz; None when it is missing, truncated or unreadable (then the frame is fitted again)."""
    try:
        with np.load(frame_paths(out_dir, key)["npz"], allow_pickle=False) as data:
            return {k: str(data[k]) if k in data.files else "" for k in ("input", "config_digest", "frame_people")}
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


def write_person(
    out_dir: Path,
    key: str,
    result: FitResult,
    frame: FrameTargets,
    stamp: dict[str, str | int],
    px: float,
    rel: float,
) -> None:
    """Write one person's npz (the frame's outputs' last file); `stamp`: values saved as they are
    (input, config_digest, body_model, pose_prior, person_id, frame_people)."""
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
    write_npz(frame_paths(out_dir, key)["npz"], **arrays)


def load_frame_params(out_dir: Path, name: str) -> dict[str, np.ndarray]:
    """The body parameters (and latent) saved for a frame."""
    with np.load(frame_paths(out_dir, name)["npz"], allow_pickle=False) as data:
        return {k: data[k] for k in (*BODY_PARAMS, "latent") if k in data.files}


@dataclass
class Scene:
    """One frame to write: its chosen people and the fits of those with targets, in order
    (`errors`: people whose fit raised, by id, with no result)."""

    key: str
    source: Path
    people: list[PersonTargets]
    results: list[FitResult]
    image: np.ndarray | None = None  # BGR
    per_person: bool | None = None  # person keys even for one person (a video with several tracks); None: if several
    errors: dict[int, str] = field(default_factory=dict)

    def key_of(self, person_id: int) -> str:
        several = len(self.people) > 1 if self.per_person is None else self.per_person
        return output_key(self.key, person_id, several)


@dataclass
class Summary:
    """What happened to every frame and person of a run; entries are output keys (a frame's, or
    `KEY.person_<id>` for each person of a frame with several)."""

    fitted: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    reprojection_px: dict[str, float] = field(default_factory=dict)
    reprojection_rel: dict[str, float] = field(default_factory=dict)
    dropped_keypoints: dict[str, int] = field(default_factory=dict)  # detections far outside the image, ignored
    frame_of: dict[str, str] = field(default_factory=dict)  # person entry -> its frame's key
    tracks: dict[str, dict[str, int]] = field(default_factory=dict)  # video or sequence -> its track counts
    seconds: float = 0.0

    def people(self) -> dict:
        """People counts: fitted (this run), already done, skipped and failed ones, the frames with a
        fitted person, and the most people fitted in one frame."""
        done = [k for k in (*self.fitted, *self.already_done) if k in self.frame_of]
        per_frame: dict[str, int] = {}
        for k in done:
            per_frame[self.frame_of[k]] = per_frame.get(self.frame_of[k], 0) + 1
        return {
            "fitted": sum(k in self.frame_of for k in self.fitted),
            "already_done": sum(k in self.frame_of for k in self.already_done),
            "skipped": sum(k in self.frame_of for k in self.skipped),
            "failed": sum(k in self.frame_of for k in self.failed),
            "frames": len(per_frame),
            "most_in_a_frame": max(per_frame.values(), default=0),
        }

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
            "people": self.people(),
            "tracks": self.tracks,
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
        c, people = d["counts"], d["people"]
        lines = [
            f"fitted {c['fitted']}, already done {c['already_done']}, skipped {c['skipped']}, "
            f"failed {c['failed']} in {d['seconds']:.1f} s"
        ]
        if people["most_in_a_frame"] > 1:
            lines.append(
                f"people: {people['fitted'] + people['already_done']} in {people['frames']} frames (up to "
                f"{people['most_in_a_frame']} in one), {people['skipped'] + people['failed']} not fitted"
            )
        for key, t in self.tracks.items():
            lines.append(
                f"{key}: {t['tracks']} track(s), {t['fitted']} fitted as sequences, short ones: "
                f"{t['stills']} as stills, {t['skipped']} skipped"
            )
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
    """Writes a run's frames into `out` and records each frame's and person's fate in `summary` (and run.log)."""

    def __init__(self, out: Path, model: BodyModel, cfg: DictConfig, overwrite: bool = False) -> None:
        self.out = out
        self.model = model
        self.faces = model.faces.cpu().numpy()
        self.options = cfg.output
        self.overwrite = overwrite
        self.stamp = {"config_digest": config_digest(cfg), "body_model": cfg.body.model, "pose_prior": cfg.prior.kind}
        self.summary = Summary()
        self._renderer = None  # the run's OverlayRenderer, made on the first overlay and kept until `finish`

    def is_done(self, key: str, source: Path) -> bool:
        """Whether an earlier run already fitted this frame (all its people) from `source` with these
        settings (recorded as already done; the people it could not fit are reported again). A frame
        fitted from another input or with other settings is refitted with `overwrite`, else reported
        as failed and left as it is (also True: nothing to do)."""
        single = saved_stamp(self.out, key)
        if single is not None:
            stamps = {key: single}
        else:
            names = [str(Path(key).parent / f.stem) for f in person_outputs(self.out, key) if f.suffix == ".npz"]
            stamps = {k: stamp for k in names if (stamp := saved_stamp(self.out, k)) is not None}
        if not stamps:
            return False
        mine = (str(source), self.stamp["config_digest"])
        other = next((k for k, v in stamps.items() if (v["input"], v["config_digest"]) != mine), None)
        if other is not None:
            if self.overwrite:
                return False
            self.fail(
                key,
                f"{frame_paths(self.out, other)['npz']} holds a fit of {stamps[other]['input'] or 'another input'} "
                "or with other settings; pass --overwrite to refit it",
            )
            return True
        record = _frame_people(next(iter(stamps.values()))["frame_people"])
        written = [output_key(key, int(i), single is None) for i in record["written"]]
        if not set(written) <= set(stamps):
            return False  # a run killed while writing this frame's people: fit it again
        for k in written:
            self.summary.already_done.append(k)
            self.summary.frame_of[k] = key
        for outcome, record_of in (("skipped", self.skip), ("failed", self.fail)):
            for i, reason in record[outcome].items():
                record_of(output_key(key, int(i), single is None), reason, frame=key)
        return True

    def skip(self, key: str, reason: str, frame: str | None = None) -> None:
        """Record a skipped frame, or a person of `frame`."""
        self.summary.skipped[key] = reason
        if frame is not None:
            self.summary.frame_of[key] = frame
        log.info("skipped %s: %s", key, reason)

    def fail(self, key: str, error: str, exc: BaseException | None = None, frame: str | None = None) -> None:
        """Record a failed frame, or a person of `frame`; run.log gets the traceback of `exc`."""
        self.summary.failed[key] = error
        if frame is not None:
            self.summary.frame_of[key] = frame
        log.error("failed %s: %s", key, error, exc_info=exc)

    def saved_params(self, key: str) -> dict[str, np.ndarray]:
        return load_frame_params(self.out, key)

    def write(self, scenes: list[Scene]) -> None:
        """Meshes, overlays and npz of fitted frames; people without targets are reported as skipped.
        A diverged fit, or one whose reprojection error is non-finite or above
        `output.max_reprojection` of the person's height, is reported as failed, not written."""
        kept: list[tuple[Scene, list[tuple[PersonTargets, FitResult, float, float]]]] = []
        for scene in scenes:
            fits, ok = iter(scene.results), []
            for person in scene.people:
                key = scene.key_of(person.person_id)
                if person.targets is None:
                    self.skip(key, person.reason or "not fitted", frame=scene.key)
                    continue
                if person.person_id in scene.errors:
                    self.fail(key, scene.errors[person.person_id], frame=scene.key)
                    continue
                result = next(fits)
                px, rel = frame_reprojection(result, person.targets)
                if not result.is_finite():
                    self.fail(key, "optimisation diverged (non-finite loss or parameters)", frame=scene.key)
                elif not np.isfinite(px) or rel > self.options.max_reprojection:
                    self.fail(
                        key,
                        f"fit rejected: reprojection error {px:.4g} px ({100 * rel:.3g} % of the person's "
                        f"height; at most {100 * self.options.max_reprojection:.3g} % accepted)",
                        frame=scene.key,
                    )
                else:
                    ok.append((person, result, px, rel))
            if ok:
                kept.append((scene, ok))
        if not kept:
            return
        params = [full_params(self.model, r.params) for _, ok in kept for _, r, _, _ in ok]
        vertices = iter(posed_vertices(self.model, params))
        params = iter(params)
        for scene, ok in kept:
            for _, result, _, _ in ok:
                result.params = next(params)
            meshes = [next(vertices) for _ in ok]
            try:
                self._write_scene(scene, ok, meshes)
            except Exception as e:
                for person, *_ in ok:
                    self.fail(scene.key_of(person.person_id), f"writing outputs failed: {error_text(e)}", e, scene.key)
                continue
            for person, _, px, rel in ok:
                key = scene.key_of(person.person_id)
                self.summary.failed.pop(key, None)  # a video frame that diverged in one window, fitted in the next
                self.summary.fitted.append(key)
                self.summary.frame_of[key] = scene.key
                self.summary.reprojection_px[key] = px
                self.summary.reprojection_rel[key] = rel
            if ok[0][0].targets.dropped:
                self.summary.dropped_keypoints[scene.key] = ok[0][0].targets.dropped

    def _write_scene(
        self, scene: Scene, ok: list[tuple[PersonTargets, FitResult, float, float]], meshes: list[np.ndarray]
    ) -> None:
        """One frame's files: earlier outputs under its key removed, then each person's obj, the
        overlay of all meshes, and each person's npz (last)."""
        stale = [frame_paths(self.out, scene.key)[k] for k in ("npz", "obj")] + person_outputs(self.out, scene.key)
        for f in stale:
            f.unlink(missing_ok=True)
        frame = ok[0][0].targets
        if self.options.mesh:
            for (person, *_), verts in zip(ok, meshes):
                write_obj(frame_paths(self.out, scene.key_of(person.person_id))["obj"], verts, self.faces)
        if self.options.overlay:
            from body.render import PALETTE, OverlayRenderer

            if self._renderer is None:
                self._renderer = OverlayRenderer(self.options.overlay_scale)
            rgb = None if scene.image is None else np.ascontiguousarray(scene.image[..., ::-1])
            colors = [PALETTE[person.person_id % len(PALETTE)] for person, *_ in ok]  # a track keeps its colour
            png = self._renderer.render(meshes, self.faces, frame.focal, frame.center, frame.image_size, rgb, colors)
            write_image(frame_paths(self.out, scene.key)["png"], png)
        record = json.dumps(
            {
                "all": [p.person_id for p in scene.people],
                "written": [p.person_id for p, *_ in ok],
                "skipped": {p.person_id: p.reason for p in scene.people if p.targets is None},
                "failed": {
                    p.person_id: self.summary.failed[scene.key_of(p.person_id)]
                    for p in scene.people
                    if scene.key_of(p.person_id) in self.summary.failed and p.targets is not None
                },
            }
        )
        for person, result, px, rel in ok:
            stamp = {**self.stamp, "input": str(scene.source), "person_id": person.person_id, "frame_people": record}
            write_person(self.out, scene.key_of(person.person_id), result, person.targets, stamp, px, rel)

    def close(self) -> None:
        """Free the overlay renderer (a later overlay makes a new one)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def finish(self, seconds: float) -> Summary:
        """Free the overlay renderer, write summary.json (also after an interruption) and return the summary."""
        self.close()
        self.summary.seconds = seconds
        self.summary.write(self.out / "summary.json")
        return self.summary


def _frame_people(record: str) -> dict:
    """A frame's people record as saved (`Writer._write_scene`); a lone person's for outputs that
    predate it."""
    if not record:
        return {"all": [0], "written": [0], "skipped": {}, "failed": {}}
    return json.loads(record)


def error_text(e: Exception) -> str:
    """How an item's error is reported. Any error of one frame, batch or video (unreadable or truncated
    files, failed fits, rendering) fails that item only; KeyboardInterrupt is no Exception and stops the run."""
    return f"{type(e).__name__}: {e}"
