"""`Writer`, the one place that writes a run's outputs (meshes, overlays, npz) and records what
happened to each frame and person in its `Summary` (and run.log)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

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

    def __init__(self, out: Path, model: BodyModel, cfg: DictConfig, overwrite: bool = False) -> None:
        self.out = out
        self.model = model
        self.faces = model.faces.cpu().numpy()
        self._obj_faces: str | None = None  # the OBJs' face lines, the same for every mesh: formatted once
        self.options = cfg.output
        self.overwrite = overwrite
        self.stamp = {"config_digest": config_digest(cfg), "body_model": cfg.body.model, "pose_prior": cfg.prior.kind}
        self.summary = Summary()
        self._renderer = None  # the run's OverlayRenderer, made on the first overlay and kept until `finish`

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
        The scenes and their results are left as they are."""
        kept = [(scene, ok) for scene in scenes if (ok := self._accepted(scene))]
        if not kept:
            return
        params = [full_params(self.model, r.params) for _, ok in kept for _, r, _, _ in ok]
        vertices = iter(posed_vertices(self.model, params))
        each = iter(params)
        for scene, ok in kept:
            try:
                self._write_scene(scene, ok, [next(each) for _ in ok], [next(vertices) for _ in ok])
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

    def _write_scene(
        self, scene: Scene, ok: list[Kept], params: list[dict[str, np.ndarray]], meshes: list[np.ndarray]
    ) -> None:
        """One frame's files: earlier outputs under its key removed, then each person's obj, the
        overlay of all meshes, and each person's npz (last), of `params` (their full parameters)."""
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
        record = people_record(
            [p.person_id for p in scene.people],
            [p.person_id for p, *_ in ok],
            {p.person_id: p.reason for p in scene.people if p.targets is None},
            {
                p.person_id: self.summary.failed[scene.key_of(p.person_id)]
                for p in scene.people
                if scene.key_of(p.person_id) in self.summary.failed and p.targets is not None
            },
        )
        for (person, result, px, rel), person_params in zip(ok, params):
            stamp = {**self.stamp, "input": str(scene.source), "person_id": person.person_id, "frame_people": record}
            write_person(
                self.out, scene.key_of(person.person_id), person_params, result, person.targets, stamp, px, rel
            )

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
