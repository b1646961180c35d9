"""The .npz of a fitted person: the body parameters, the camera, the fit's record and the stamp
that makes a frame resumable (input, settings digest, the frame's people record)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from configs.files import write_npz
from fitting.fitter import FitResult
from fitting.outputs.paths import frame_paths
from fitting.targets import FrameTargets
from fitting.variables import SAVED

BODY_PARAMS = SAVED  # the body parameters a person's npz holds, named by the variables table


def write_person(
    out_dir: Path,
    key: str,
    params: dict[str, np.ndarray],
    result: FitResult,
    frame: FrameTargets,
    stamp: dict[str, str | int],
    px: float,
    rel: float,
) -> None:
    """Write one person's npz (the frame's outputs' last file): `params`, the body parameters
    (`fitting.outputs.fits.full_params` of the result's), and the rest of `result`; `stamp`: values
    saved as they are (input, config_digest, body_model, pose_prior, person_id, frame_people)."""
    arrays: dict[str, np.ndarray] = {k: np.asarray(v, np.float32) for k, v in params.items()}
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


def people_record(people: list[int], written: list[int], skipped: dict[int, str | None], failed: dict[int, str]) -> str:
    """A frame's people record (`frame_people`, JSON): the ids of all its people, of those written,
    and the reasons of those skipped and failed."""
    return json.dumps({"all": people, "written": written, "skipped": skipped, "failed": failed})


def read_people_record(record: str) -> dict:
    """A saved `people_record`; a lone person's for outputs that predate it."""
    if not record:
        return {"all": [0], "written": [0], "skipped": {}, "failed": {}}
    return json.loads(record)


def saved_stamp(out_dir: Path, key: str) -> dict[str, str] | None:
    """The input, settings digest and frame's people record (`frame_people`, JSON) saved in an
    output's .npz; None when it is missing, truncated or unreadable (then the frame is fitted again)."""
    try:
        with np.load(frame_paths(out_dir, key)["npz"], allow_pickle=False) as data:
            return {k: str(data[k]) if k in data.files else "" for k in ("input", "config_digest", "frame_people")}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile):
        return None


def load_frame_params(out_dir: Path, name: str) -> dict[str, np.ndarray]:
    """The body parameters (and latent) saved for a frame."""
    with np.load(frame_paths(out_dir, name)["npz"], allow_pickle=False) as data:
        return {k: data[k] for k in (*BODY_PARAMS, "latent") if k in data.files}
