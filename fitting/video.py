"""Videos: one tracked person fitted as a sequence, in overlapping windows.

1. Detect every frame (MediaPipe tracking, in the detector's worker process);
   detections are cached in the video's output folder so a resumed run does
   not detect again. A video's outputs live under its own key: `OUT/clip.avi/`
   holds `000012.npz` (.obj, .overlay.png) per frame, `keypoints.npz` and
   `overlay.mp4`.
2. One shape for the person: the mean of independent fits of `video.shape_frames`
   frames spread over the video, then held fixed (a resumed run reads it from a
   finished frame).
3. Windows of `video.window` detected frames. The window's new frames are first
   fitted on their own (one batch, all stages, starting from the last fitted
   frame), then the whole window is refined as one problem with temporal
   smoothness on joint rotations, translation and 3D joints (last stage's
   weights). The first `video.overlap` frames of a window are the previous
   window's results, held fixed, so windows join smoothly. Memory is that of
   one window, whatever the video's length.
4. Per-frame outputs as for images, then an overlay MP4 of the whole video.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

import keypoints
from body.io import write_npz
from fitting.fitter import Fitter
from fitting.hypotheses import GivenStart
from fitting.inputs import Item
from fitting.outputs import Scene, Writer, frame_paths
from fitting.targets import FrameTargets, PersonTargets, frame_targets

# The detector's video tracking: a video -> every frame's Keypoints (on_frame: called per frame).
Tracker = Callable[..., list[keypoints.Keypoints]]


def frame_name(item: Item, index: int) -> str:
    """A video frame's output key: under the video's own key."""
    return f"{item.name}/{index:06d}"


def fit_video(
    item: Item,
    track: Tracker,
    fitter: Fitter,
    writer: Writer,
    cfg: DictConfig,
    progress: bool = True,
) -> None:
    """Fit one video into the writer's folder (see the module docstring); `track` detects its frames."""
    detections = _detections(item, track, writer.out / item.name, cfg, progress)
    valid: list[tuple[int, FrameTargets]] = []
    for index, targets, reason in detections:
        if targets is None:
            writer.skip(frame_name(item, index), reason)
        else:
            valid.append((index, targets))
    done = [writer.is_done(frame_name(item, i), item.path) for i, _ in valid]
    if valid and not all(done):
        shape = _person_shape(item, fitter, writer, cfg, valid, done)
        _fit_windows(item, fitter, writer, cfg, valid, done, shape, progress)
    mp4 = writer.out / item.name / "overlay.mp4"
    if cfg.output.video_overlay and cfg.output.overlay and (not mp4.exists() or not all(done)):
        _write_overlay_video(item, writer.out, mp4)


def _detections(
    item: Item, track: Tracker, folder: Path, cfg: DictConfig, progress: bool
) -> list[tuple[int, FrameTargets | None, str | None]]:
    """(frame index, targets or None, skip reason) per frame, from the cache or the detector."""
    cache = folder / "keypoints.npz"
    if not cache.exists():
        total = keypoints.video.video_info(item.path).frame_count or None
        with tqdm(total=total, desc=f"{item.name}: keypoints", unit="frame", disable=not progress, leave=False) as bar:
            _save_detections(cache, track(item.path, on_frame=lambda _: bar.update(1)))
    return _load_detections(cache, cfg)


def _save_detections(path: Path, kps: list[keypoints.Keypoints]) -> None:
    """The tracked person of every frame, stacked per part (P = 0 frames as zeros)."""
    arrays: dict[str, np.ndarray] = {
        "frame_index": np.array([k.frame_index for k in kps], np.int64),
        "image_size": np.array(kps[0].image_size, np.int64),
        "body_set": np.asarray(kps[0].body_set),
    }
    for part in ("body", "left_hand", "right_hand", "face"):
        template = next((getattr(k, part) for k in kps if getattr(k, part) is not None and len(getattr(k, part))), None)
        if template is None and part == "body":
            template = np.zeros((1, keypoints.BODY_SET_SIZES[kps[0].body_set], 3), np.float32)
        if template is None:
            continue
        arrays[part] = np.stack(
            [
                getattr(k, part)[0] if k.num_people and getattr(k, part) is not None else np.zeros_like(template[0])
                for k in kps
            ]
        )
    arrays["people"] = np.array([k.num_people for k in kps], np.int64)
    write_npz(path, **arrays)


def _load_detections(path: Path, cfg) -> list[tuple[int, FrameTargets | None, str | None]]:
    with np.load(path, allow_pickle=False) as data:
        d = {k: data[k] for k in data.files}
    size = tuple(int(v) for v in d["image_size"])
    out = []
    for i, index in enumerate(d["frame_index"]):
        parts = {p: d[p][i : i + 1] for p in ("left_hand", "right_hand", "face") if p in d}
        body = d["body"][i : i + 1] if d["people"][i] else d["body"][:0]
        parts = {k: (v if d["people"][i] else v[:0]) for k, v in parts.items()}
        kp = keypoints.Keypoints(str(d["body_set"]), body, image_size=size, frame_index=int(index), **parts)
        targets, reason = frame_targets(kp, size, cfg)
        out.append((int(index), targets, reason))
    return out


def _person_shape(item: Item, fitter: Fitter, writer: Writer, cfg: DictConfig, valid, done) -> torch.Tensor:
    """The person's one shape: from a finished frame, else the mean of the converged ones of
    independent fits of `video.shape_frames` frames spread over the video."""
    finished = [i for (i, _), d in zip(valid, done) if d]
    if finished:
        return fitter.variables(writer.saved_params(frame_name(item, finished[0])))["shape"]
    n = min(cfg.video.shape_frames, len(valid))
    picks = np.unique(np.linspace(0, len(valid) - 1, n).round().astype(int))
    results = [r for r in fitter.fit_frames([valid[p][1] for p in picks]) if r.is_finite()]
    if not results:
        raise ValueError("no shape frame converged")
    return torch.as_tensor(np.mean([r.params["shape"] for r in results], 0), device=fitter.device, dtype=fitter.dtype)


def _fit_windows(
    item: Item, fitter: Fitter, writer: Writer, cfg: DictConfig, valid, done, shape: torch.Tensor, progress: bool
) -> None:
    """Windows of detected frames: new frames fitted on their own (batched, warm-started from the
    last fitted frame), then the window refined jointly with the temporal terms."""
    size, step = cfg.video.window, cfg.video.window - cfg.video.overlap
    known: dict[int, dict[str, torch.Tensor]] = {}  # position in `valid` -> variables of a fitted frame
    reader = _FrameReader(item.path)
    bar = tqdm(total=len(valid), initial=sum(done), desc=f"{item.name}: fitting", unit="frame", disable=not progress)
    start = 0
    while start < len(valid):
        positions = list(range(start, min(start + size, len(valid))))
        for p in positions:
            if done[p] and p not in known:
                known[p] = fitter.variables(writer.saved_params(frame_name(item, valid[p][0])))
        new = [p for p in positions if p not in known]
        if new:
            before = [p for p in positions if p in known and p < new[0]]
            warm = [GivenStart(known[before[-1]])] if before else None
            single = fitter.fit_frames([valid[p][1] for p in new], shape=shape, hypotheses=warm)
            fitted = {**known, **{p: fitter.variables(r.params) for p, r in zip(new, single) if r.is_finite()}}
            results = fitter.fit_sequence(
                [valid[p][1] for p in positions],
                [valid[p][0] for p in positions],
                [fitted.get(p) for p in positions],
                [p not in new for p in positions],
                shape,
            )
            images = reader.get([valid[p][0] for p in new])
            named = []
            for p, refined, first in zip(new, results, single):
                r = refined.after(first)
                if r.is_finite():  # a diverged frame is fitted again, not held, where the next window overlaps it
                    known[p] = fitter.variables(r.params)
                person = [PersonTargets(0, valid[p][1])]
                named.append(Scene(frame_name(item, valid[p][0]), item.path, person, [r], images[valid[p][0]]))
            writer.write(named)
            bar.update(len(new))
        if positions[-1] == len(valid) - 1:
            break
        start += step
        known = {p: x for p, x in known.items() if p >= start}
    bar.close()


class _FrameReader:
    """Frames of a video by increasing index, read once, sequentially; the previous call's frames
    are kept for a diverged frame that is fitted again."""

    def __init__(self, path: Path) -> None:
        self._frames: Iterator[tuple[int, float | None, np.ndarray]] = keypoints.read_frames(path)
        self._last: dict[int, np.ndarray | None] = {}

    def get(self, indices: list[int]) -> dict[int, np.ndarray | None]:
        wanted = set(indices)
        found = {i: f for i, f in self._last.items() if i in wanted and f is not None}
        for index, _, frame in self._frames:
            if index in wanted:
                found[index] = frame
            if index >= max(indices):
                break
        self._last = {i: found.get(i) for i in indices}
        return self._last


def _write_overlay_video(item: Item, out: Path, mp4: Path) -> None:
    """The video with each fitted frame's overlay (frames without a fit as they were)."""
    info = keypoints.video.video_info(item.path)
    with keypoints.video.video_writer(mp4, info.fps) as write:
        for index, _, frame in keypoints.read_frames(item.path):
            png = frame_paths(out, frame_name(item, index))["png"]
            overlay = cv2.imread(str(png)) if png.exists() else None
            write(frame if overlay is None else overlay)
