"""`Writer`, the one place that writes a run's outputs (meshes, overlays, npz) and records what
happened to each frame and person in its `Summary` (and run.log).

With `background=True` (a run's `output.write_thread`, `fitting.pipeline.write_thread`) a frame's
files are written and its overlay drawn on the writer's own thread while the caller fits the next
batch: `write` first waits for the frames it handed over before, so at most one call's frames are
in flight, and `wait`, `close` and `finish` wait for all. A frame's people are recorded as fitted
once its files are on disk."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from omegaconf import DictConfig

from body.base import BodyModel
from configs.files import obj_faces, write_image, write_obj
from fitting.fitter import FitResult
from fitting.outputs.fits import frame_reprojection, full_params, posed_vertices
from fitting.outputs.npz import load_frame_params, people_record, write_person
from fitting.outputs.paths import config_digest, frame_paths, output_key, person_outputs
from fitting.outputs.resume import SavedFrame, saved_frame
from fitting.outputs.summary import Summary, error_text
from fitting.targets import PersonTargets

log = logging.getLogger(__package__)  # run.log names the package, as before it was split

# A person to write: their targets, fit, and reprojection error (px, fraction of their height).
Kept = tuple[PersonTargets, FitResult, float, float]


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


class Writer:
    """Writes a run's frames into `out` and records each frame's and person's fate in `summary` (and run.log)."""

    def __init__(
        self, out: Path, model: BodyModel, cfg: DictConfig, overwrite: bool = False, background: bool = False
    ) -> None:
        self.out = out
        self.model = model
        self.faces = model.faces.cpu().numpy()
        self._obj_faces: str | None = None  # the OBJs' face lines, the same for every mesh: formatted once
        self.options = cfg.output
        self.overwrite = overwrite
        self.stamp = {"config_digest": config_digest(cfg), "body_model": cfg.body.model, "pose_prior": cfg.prior.kind}
        self.summary = Summary()
        self._renderer = None  # the run's OverlayRenderer, made on the first overlay and kept until `finish`
        self.background = background
        self._thread: ThreadPoolExecutor | None = None  # the files' thread (`background`), made on first use
        self._pending: list[tuple[Scene, list[Kept], Future]] = []  # handed over, not yet recorded

    def saved_frame(self, key: str, source: Path) -> SavedFrame | None:
        """What an earlier run left of this frame if it needs no fit now (`fitting.outputs.resume.saved_frame`;
        a fit of another input or with other settings is refitted with `overwrite`); None: fit it."""
        return saved_frame(self.out, key, source, self.stamp["config_digest"], self.overwrite)

    def record_saved(self, saved: SavedFrame) -> None:
        """Record a frame an earlier run settled: its people as already done, those it could not fit
        skipped or failed again; a frame holding another input's fit as failed."""
        if saved.foreign is not None:
            self.fail(saved.key, saved.foreign)
            return
        for k in saved.done:
            self.summary.already_done.append(k)
            self.summary.frame_of[k] = saved.key
        for k, reason in saved.skipped.items():
            self.skip(k, reason, frame=saved.key)
        for k, reason in saved.failed.items():
            self.fail(k, reason, frame=saved.key)

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
        `output.max_reprojection` of the person's height, is reported as failed, not written.
        With `background` the files are written on the writer's thread (see the module docstring).
        The scenes and their results are left as they are."""
        self.wait()
        kept = [(scene, ok) for scene in scenes if (ok := self._accepted(scene))]
        if not kept:
            return
        params = [full_params(self.model, r.params) for _, ok in kept for _, r, _, _ in ok]
        vertices = iter(posed_vertices(self.model, params))
        each = iter(params)
        for scene, ok in kept:
            args = (scene, ok, [next(each) for _ in ok], [next(vertices) for _ in ok], self._people_record(scene, ok))
            self._pending.append((scene, ok, self._submit(self._write_scene, *args)))
        if not self.background:
            self.wait()

    def wait(self) -> None:
        """Wait for the frames handed to the writer's thread and record their people as fitted, or as
        failed where a file could not be written."""
        while self._pending:  # each taken off once recorded: an interrupted wait leaves the rest to `finish`
            scene, ok, written = self._pending[0]
            error = written.exception()  # waits for the frame's files
            self._pending.pop(0)
            if error is not None:
                why = f"writing outputs failed: {error_text(error)}"
                for person, *_ in ok:
                    self.fail(scene.key_of(person.person_id), why, error, scene.key)
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

    def _submit(self, job: Callable[..., None], *args: object) -> Future:
        """`job(*args)` on the writer's thread with `background`, else now; its outcome as a future."""
        if self.background:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="bodyfit-writer")
            return self._thread.submit(job, *args)
        done: Future = Future()
        try:
            done.set_result(job(*args))
        except Exception as e:
            done.set_exception(e)
        return done

    def _accepted(self, scene: Scene) -> list[Kept]:
        """The scene's people whose fits are written; the others recorded as skipped or failed."""
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
        return ok

    def _people_record(self, scene: Scene, ok: list[Kept]) -> str:
        """The npz's `frame_people`: the scene's people, which are written, skipped and failed, and why."""
        return people_record(
            [p.person_id for p in scene.people],
            [p.person_id for p, *_ in ok],
            {p.person_id: p.reason for p in scene.people if p.targets is None},
            {
                p.person_id: self.summary.failed[scene.key_of(p.person_id)]
                for p in scene.people
                if scene.key_of(p.person_id) in self.summary.failed and p.targets is not None
            },
        )

    def _write_scene(
        self, scene: Scene, ok: list[Kept], params: list[dict[str, np.ndarray]], meshes: list[np.ndarray], record: str
    ) -> None:
        """One frame's files: earlier outputs under its key removed, then each person's obj, the
        overlay of all meshes, and each person's npz (last), of `params` (their full parameters).
        Touches no state but the renderer's: it may run on the writer's thread."""
        stale = [frame_paths(self.out, scene.key)[k] for k in ("npz", "obj")] + person_outputs(self.out, scene.key)
        for f in stale:
            f.unlink(missing_ok=True)
        frame = ok[0][0].targets
        if self.options.mesh:
            if self._obj_faces is None:
                self._obj_faces = obj_faces(self.faces)
            for (person, *_), verts in zip(ok, meshes):
                write_obj(frame_paths(self.out, scene.key_of(person.person_id))["obj"], verts, self._obj_faces)
        if self.options.overlay:
            from body.render import PALETTE, OverlayRenderer

            if self._renderer is None:
                self._renderer = OverlayRenderer(self.options.overlay_scale)
            rgb = None if scene.image is None else np.ascontiguousarray(scene.image[..., ::-1])
            colors = [PALETTE[person.person_id % len(PALETTE)] for person, *_ in ok]  # a track keeps its colour
            png = self._renderer.render(meshes, self.faces, frame.focal, frame.center, frame.image_size, rgb, colors)
            write_image(frame_paths(self.out, scene.key)["png"], png)
        for (person, result, px, rel), person_params in zip(ok, params):
            stamp = {**self.stamp, "input": str(scene.source), "person_id": person.person_id, "frame_people": record}
            write_person(
                self.out, scene.key_of(person.person_id), person_params, result, person.targets, stamp, px, rel
            )

    def close(self) -> None:
        """Wait for the frames in flight, then free the overlay renderer on the thread that drew with it
        and end that thread (a later `write` makes new ones)."""
        try:
            self.wait()
        finally:
            if self._renderer is not None:
                self._submit(self._renderer.close).result()
                self._renderer = None
            if self._thread is not None:
                self._thread.shutdown()
                self._thread = None

    def finish(self, seconds: float) -> Summary:
        """Wait for the frames in flight, free the overlay renderer, write summary.json (also after an
        interruption) and return the summary."""
        self.close()
        self.summary.seconds = seconds
        self.summary.write(self.out / "summary.json")
        return self.summary
