"""Videos and OpenPose frame sequences: every tracked person fitted as a sequence, frames written as scenes.

1. Detections per frame. A video's are detected in the detector's worker process: every
   person (`keypoints.person: all`; searched every `tracking.search_every` frames, carried in
   crops between searches), else MediaPipe's tracking of one person; they are cached in the
   video's output folder (`OUT/clip.avi/keypoints.npz`, with a person axis; a cache of the
   other mode or of an older layout is detected again), so a resumed run does not detect
   again. A sequence's are read from its OpenPose files (`fitting.sequence`).
2. Tracks: with `all`, identities by assignment across frames (`keypoints.tracking`,
   re-identification after up to `tracking.max_gap` frames); else the chosen person of each
   frame is the one track.
3. Each track is fitted on its own (`fitting.tracks`): as a sequence with one shape and the
   temporal terms; in a video with several tracks, one with fewer than `tracking.min_length`
   frames as stills or not at all (`tracking.short`). Tracks are fitted one after another,
   interleaved in time (always the track that is furthest behind), not as rows of one
   L-BFGS batch: `Fitter.fit_frames` holds one shape and one warm start for a whole call,
   and the tracks' windows start and end at different frames.
4. Every frame is one scene of its tracks, written once all of them are settled: one track
   writes `OUT/clip.avi/000012.npz` (.obj, .overlay.png) as before; several write
   `000012.person_<track id>.npz` and .obj per person and one overlay of all. Memory is that
   of a window per track, whatever the video's length.
5. Per video: `tracks.json` and the motion per track (`fitting.motion_files`), and the overlay
   MP4 (`overlay.mp4`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
from omegaconf import DictConfig

import keypoints
from configs.files import write_npz
from fitting.fitter import FitResult, Fitter
from fitting.inputs import Item
from fitting.motion_files import TrackRecord, write_motion_files
from fitting.outputs import Scene, Writer, error_text, frame_paths, output_key
from fitting.progress import FrameBar
from fitting.targets import PersonTargets, people_targets
from fitting.tracks import SequenceFit, StillsFit, TrackFit
from keypoints.tracking import Track, track_people

log = logging.getLogger(__name__)

# The detector's video pass: a video -> every frame's Keypoints (on_frame: called per frame;
# search_every: None for MediaPipe's tracking of one person, N for every person).
VideoDetector = Callable[..., list[keypoints.Keypoints]]
_PARTS = ("body", "left_hand", "right_hand", "face")


@dataclass(frozen=True)
class Frame:
    """One frame of a video or sequence with its detections."""

    index: int  # the frame number
    name: str  # "000012" for a video; the OpenPose file's stem for a sequence
    source: Path  # the file it came from (the video, or the frame's JSON)
    kp: keypoints.Keypoints


@dataclass
class Footage:
    """A video or an OpenPose sequence, ready to fit."""

    item: Item
    frames: list[Frame]  # by frame number
    image_size: tuple[int, int] | None  # (w, h); None: from camera.image_size
    fps: float
    images: Callable[[list[int]], dict[int, np.ndarray | None]]  # BGR images of frames by number
    overlay_frames: Callable[[], Iterator[tuple[int, np.ndarray]]] | None  # every image in order; None: none


def frame_name(item: Item, index: int) -> str:
    """A video frame's output key: under the video's own key."""
    return f"{item.name}/{index:06d}"


def fit_video(
    item: Item, detect: VideoDetector, fitter: Fitter, writer: Writer, cfg: DictConfig, progress: bool = True
) -> None:
    """Fit one video into the writer's folder (see the module docstring); `detect` detects its frames."""
    kps = _detections(item, detect, writer.out / item.name, cfg, progress)
    info = keypoints.video.video_info(item.path)
    frames = [Frame(int(k.frame_index), f"{k.frame_index:06d}", item.path, k) for k in kps]
    reader = _FrameReader(item.path)

    def overlay_frames() -> Iterator[tuple[int, np.ndarray]]:
        return ((index, frame) for index, _, frame in keypoints.read_frames(item.path))

    size = kps[0].image_size if kps else None
    fit_footage(Footage(item, frames, size, info.fps, reader.get, overlay_frames), fitter, writer, cfg, progress)


def fit_footage(footage: Footage, fitter: Fitter, writer: Writer, cfg: DictConfig, progress: bool = True) -> None:
    """Track, fit and write a video or sequence (steps 2-5 of the module docstring)."""
    item = footage.item
    tracks = _tracks(footage.frames, cfg)
    several = len(tracks) > 1
    modes = {t.id: _mode(t, several, cfg) for t in tracks}
    people = _people(footage, tracks, modes, cfg)
    scenes: dict[int, Scene] = {}
    done: set[int] = set()
    for f in footage.frames:
        key = frame_name(item, f.index)
        if f.index not in people:
            writer.skip(key, "no person detected" if f.kp.num_people == 0 else "no person with confident points")
        elif (saved := writer.saved_frame(key, f.source)) is not None:
            writer.record_saved(saved)
            done.add(f.index)
        else:
            scenes[f.index] = Scene(key, f.source, people[f.index], [], per_person=several)
    fits = {t.id: _track_fit(t, people, modes[t.id], done, footage, fitter, writer, several) for t in tracks}
    fits = {k: v for k, v in fits.items() if v is not None}
    new = bool(scenes)
    if new:
        _fit_and_write(footage, scenes, fits, writer, progress)
        writer.wait()  # the frames' files on disk before the motion files and the video read them
    counts = [modes[t.id] for t in tracks]
    writer.summary.tracks[item.name] = {
        "tracks": len(tracks),
        "fitted": counts.count("sequence"),
        "stills": counts.count("still"),
        "skipped": counts.count("skip"),
    }
    records = [_record(t, modes[t.id], footage, writer, several) for t in tracks]
    write_motion_files(writer.out / item.name, records, footage.fps)
    mp4 = writer.out / item.name / "overlay.mp4"
    if footage.overlay_frames and cfg.output.video_overlay and cfg.output.overlay and (new or not mp4.exists()):
        _write_overlay_video(footage, writer.out, mp4)


def _tracks(frames: list[Frame], cfg: DictConfig) -> list[Track]:
    """Every person's track (`keypoints.person: all`), else the chosen person of each frame as one."""
    if cfg.keypoints.person == "all":
        return track_people([f.kp for f in frames], cfg.tracking.max_gap)
    chosen = {f.index: f.kp.chosen(cfg.keypoints.person)[0] for f in frames if f.kp.num_people}
    return [Track(0, chosen)] if chosen else []


def _mode(track: Track, several: bool, cfg: DictConfig) -> str:
    """How a track is fitted: as a "sequence"; a short one of a video with several, as `tracking.short` says."""
    if several and len(track.people) < cfg.tracking.min_length:
        return str(cfg.tracking.short)
    return "sequence"


def _people(
    footage: Footage, tracks: list[Track], modes: dict[int, str], cfg: DictConfig
) -> dict[int, list[PersonTargets]]:
    """Per frame number, its tracks' people (`person_id`: the track id) with targets or why not."""
    frames = {f.index: f for f in footage.frames}
    out: dict[int, list[PersonTargets]] = {}
    for t in tracks:
        for index, i in sorted(t.people.items()):
            if modes[t.id] == "skip":
                why = (
                    f"track {t.id} has {len(t.people)} frame(s), fewer than tracking.min_length "
                    f"{cfg.tracking.min_length} (tracking.short=skip)"
                )
                person = PersonTargets(t.id, None, why)
            else:
                (one,), _ = people_targets(frames[index].kp.select(i), footage.image_size, cfg, by="all")
                person = PersonTargets(t.id, one.targets, one.reason)
            out.setdefault(index, []).append(person)
    return out


def _track_fit(
    track: Track,
    people: dict[int, list[PersonTargets]],
    mode: str,
    done: set[int],
    footage: Footage,
    fitter: Fitter,
    writer: Writer,
    several: bool,
) -> TrackFit | None:
    """The track's fit over its frames with targets (a finished frame's fit read back, or left
    out where this person was not written there); None for a skipped track."""
    if mode == "skip":
        return None

    def key(index: int) -> str:
        return output_key(frame_name(footage.item, index), track.id, several)

    frames = []
    for index in sorted(track.people):
        person = next(p for p in people[index] if p.person_id == track.id)
        if person.targets is not None and (index not in done or frame_paths(writer.out, key(index))["npz"].exists()):
            frames.append((index, person.targets))

    def saved(index: int) -> dict[str, np.ndarray] | None:
        return writer.saved_params(key(index)) if index in done else None

    kind = SequenceFit if mode == "sequence" else StillsFit
    return kind(frames, fitter, saved)


def _fit_and_write(
    footage: Footage, scenes: dict[int, Scene], fits: dict[int, TrackFit], writer: Writer, progress: bool
) -> None:
    """Step the track furthest behind until every track is finished; write each frame once all
    its tracks are settled. A track whose step raises fails its remaining frames only."""
    results: dict[int, dict[int, FitResult]] = {}
    bar = FrameBar(len(scenes), f"{footage.item.name}: fitting", progress)
    while scenes:
        behind = min((f.next_frame for f in fits.values()), default=math.inf)
        ready = [(i, scenes.pop(i)) for i in sorted(scenes) if i < behind]
        if ready:
            _write(footage, ready, results, writer)
            bar.update(len(ready))
        if behind == math.inf:
            break
        track_id, fit = min(fits.items(), key=lambda kv: kv[1].next_frame)
        try:
            for index, r in fit.step().items():
                results.setdefault(index, {})[track_id] = r
        except Exception as e:
            log.error("%s: track %d failed", footage.item.name, track_id, exc_info=e)
            for index in fit.remaining():
                if index in scenes:
                    scenes[index].errors[track_id] = f"fitting failed: {error_text(e)}"
            fit.finish()
    bar.close()


def _write(
    footage: Footage, ready: list[tuple[int, Scene]], results: dict[int, dict[int, FitResult]], writer: Writer
) -> None:
    """Write settled frames (frame number, scene): each scene gets its tracks' results (a missing one is an error)."""
    images = footage.images([index for index, _ in ready])
    for index, scene in ready:
        fitted = results.pop(index, {})
        for p in scene.people:
            if p.targets is not None and p.person_id not in scene.errors and p.person_id not in fitted:
                scene.errors[p.person_id] = "not fitted"
        scene.results = [fitted[p.person_id] for p in scene.people if p.targets is not None and p.person_id in fitted]
        scene.image = images.get(index)
    writer.write([scene for _, scene in ready])


def _record(track: Track, mode: str, footage: Footage, writer: Writer, several: bool) -> TrackRecord:
    """What `fitting.motion_files` needs of a track."""
    names = {f.index: f.name for f in footage.frames}
    frames = sorted(track.people)
    npz = [frame_paths(writer.out, output_key(frame_name(footage.item, i), track.id, several))["npz"] for i in frames]
    return TrackRecord(track.id, mode, frames, [names[i] for i in frames], npz, several)


def _detections(
    item: Item, detect: VideoDetector, folder: Path, cfg: DictConfig, progress: bool
) -> list[keypoints.Keypoints]:
    """Every frame's detections, from the cache when it holds this mode's, else from the detector."""
    cache = folder / "keypoints.npz"
    search = cfg.tracking.search_every if cfg.keypoints.person == "all" else None
    mode = "tracked" if search is None else f"all, search every {search}"
    kps = _load_detections(cache, mode) if cache.exists() else None
    if kps is None:
        total = keypoints.video.video_info(item.path).frame_count or None
        with FrameBar(total, f"{item.name}: keypoints", progress, leave=False) as bar:
            kps = detect(item.path, on_frame=lambda _: bar.update(1), search_every=search)
        _save_detections(cache, kps, mode)
    return kps


def _save_detections(path: Path, kps: list[keypoints.Keypoints], mode: str) -> None:
    """Every frame's people, stacked per part with a person axis (F, P, K, 3), zero-padded to the
    most people in a frame; `people` says how many each frame has."""
    most = max((k.num_people for k in kps), default=0)
    arrays: dict[str, np.ndarray] = {
        "mode": np.asarray(mode),
        "frame_index": np.array([k.frame_index for k in kps], np.int64),
        "image_size": np.array(kps[0].image_size, np.int64),
        "body_set": np.asarray(kps[0].body_set),
        "people": np.array([k.num_people for k in kps], np.int64),
    }
    for part in _PARTS:
        template = next((getattr(k, part) for k in kps if getattr(k, part) is not None), None)
        if template is None:
            continue
        stacked = np.zeros((len(kps), most, *template.shape[1:]), np.float32)
        for f, k in enumerate(kps):
            if getattr(k, part) is not None:
                stacked[f, : k.num_people] = getattr(k, part)
        arrays[part] = stacked
    write_npz(path, **arrays)


def _load_detections(path: Path, mode: str) -> list[keypoints.Keypoints] | None:
    """The cached detections; None for a cache of another mode, of the older one-person layout
    (no `mode`), or unreadable (then the video is detected again)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            d = {k: data[k] for k in data.files}
    except (OSError, EOFError, ValueError):
        return None
    if "mode" not in d or str(d["mode"]) != mode:
        return None
    size = tuple(int(v) for v in d["image_size"])
    out = []
    for f, (index, n) in enumerate(zip(d["frame_index"], d["people"])):
        parts = {p: d[p][f, :n] for p in _PARTS if p in d}
        out.append(keypoints.Keypoints(str(d["body_set"]), image_size=size, frame_index=int(index), **parts))
    return out


class _FrameReader:
    """Frames of a video by increasing index, read once, sequentially."""

    def __init__(self, path: Path) -> None:
        self._frames: Iterator[tuple[int, float | None, np.ndarray]] = keypoints.read_frames(path)

    def get(self, indices: list[int]) -> dict[int, np.ndarray | None]:
        wanted, found = set(indices), {}
        if not indices:
            return found
        for index, _, frame in self._frames:
            if index in wanted:
                found[index] = frame
            if index >= max(indices):
                break
        return found


def _write_overlay_video(footage: Footage, out: Path, mp4: Path) -> None:
    """The frames with each fitted frame's overlay (frames without a fit as they were)."""
    with keypoints.video.video_writer(mp4, footage.fps) as write:
        for index, frame in footage.overlay_frames():
            png = frame_paths(out, frame_name(footage.item, index))["png"]
            overlay = cv2.imread(str(png)) if png.exists() else None
            write(frame if overlay is None else overlay)
