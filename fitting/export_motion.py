"""A run's fitted frames as animations of the SMPL-X skeleton in a y-up world (for the exporters).

`find_clips` lists what a run folder holds: every track of every video or sequence
folder, its frames in order (`clip.avi/000012.npz`; with several tracks each track's
`clip.avi/000012.person_<id>.npz`), and every person of a single image as a one-frame
clip (`x.png.npz`, or `x.png.person_<id>.npz`).
`load_motion` turns a clip into a `Motion`: the 55 SMPL-X joints' rest offsets at
the clip's fitted shape (zero pose), their per-frame local rotations, the pelvis
path, and the body model's own posed joints to check the skeleton against.

World: the fit lives in OpenCV camera coordinates (x right, y down, z forward).
The world turns them 180 deg about x (the camera's y up, z back: glTF's camera
axes), then by the smallest rotation that stands the pelvis's mean up axis over
the clip on +y, so the person stands upright on y whatever the camera's pitch or
roll; then shifts them so the first frame's pelvis is above the origin and the
lowest vertex of the clip touches y = 0.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

import body
from body.base import BodyModel
from body.rotations import axis_angle_to_matrix
from body.skeleton import BODY_PARENTS, SMPLX_JOINT_NAMES
from fitting.outputs import BODY_PARAMS, PERSON_INFIX
from fitting.variables import SAVED_PER_ROW
from prior.data.fk import forward_kinematics

DEFAULT_FPS = 30.0
_FRAME_FILE = re.compile(r"^(\d+)(?:\.person_(\d+))?\.npz$")  # a video frame's, or a track's in it
_CHUNK = 64  # frames per body-model forward


class ExportError(ValueError):
    """The folder or a frame in it cannot be exported (one line naming the file and the fix)."""


def _smplx_parents() -> tuple[int, ...]:
    """Parents of the 55 SMPL-X joints: the body tree; jaw and eyes on the head; each finger a chain from its wrist."""
    names = SMPLX_JOINT_NAMES
    head = names.index("head")
    parents = list(BODY_PARENTS) + [head] * 3
    for name in names[len(parents) :]:
        side, _, joint = name.partition("_")
        k = int(joint[-1])
        parents.append(names.index(f"{side}_wrist" if k == 1 else f"{name[:-1]}{k - 1}"))
    return tuple(parents)


SMPLX_PARENTS = _smplx_parents()
FLIP = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes -> y up, z back (a camera looking down -z)


@dataclass(frozen=True)
class Clip:
    """One fitted sequence of a run folder: a track of a video's frames, or one person of an image."""

    name: str  # the input's key: "x.png" or "clip.avi", with ".person_<id>" for one of several
    frames: tuple[Path, ...]  # frame .npz files in order
    indices: tuple[int, ...]  # their frame numbers in the video (0 for an image)
    stem: Path  # exports are written to stem + ".bvh" / ".glb"
    fps: float | None = None  # the frame rate the run recorded (a sequence's --fps), else from the video


def find_clips(out_dir: Path) -> list[Clip]:
    """Every track of every video folder and every person of every single image under `out_dir`,
    by name. Raises ExportError when the folder is missing or holds no fitted frame."""
    if not out_dir.is_dir():
        raise ExportError(f"{out_dir}: no such folder; give the --out folder of a run_fit.py run")
    clips = []
    for entry in sorted(out_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            clips += _tracks(entry)
        elif entry.suffix == ".npz":
            clips.append(Clip(entry.name[: -len(".npz")], (entry,), (0,), entry.with_suffix("")))
    if not clips:
        raise ExportError(
            f"{out_dir} holds no fitted frames (KEY.npz); fit into it first: run_fit.py INPUT --out {out_dir}"
        )
    return clips


def _tracks(folder: Path) -> list[Clip]:
    """A video or sequence folder's tracks: its frames grouped by person id, each in frame order;
    exported to `motion` (one track) or `motion.person_<id>`."""
    groups: dict[str | None, list[tuple[int, Path]]] = {}
    for p in folder.iterdir():
        if m := _FRAME_FILE.match(p.name):
            groups.setdefault(m.group(2), []).append((int(m.group(1)), p))
    tracks_json = folder / "tracks.json"
    fps = None
    if tracks_json.is_file():
        try:
            fps = float(json.loads(tracks_json.read_text())["fps"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ExportError(f"{tracks_json}: unreadable ({type(e).__name__}: {e}); fit the folder again") from e
    clips = []
    for person in sorted(groups, key=lambda g: -1 if g is None else int(g)):
        frames = sorted(groups[person])
        suffix = "" if person is None else f"{PERSON_INFIX}{person}"
        indices, paths = tuple(i for i, _ in frames), tuple(p for _, p in frames)
        clips.append(Clip(folder.name + suffix, paths, indices, folder / f"motion{suffix}", fps))
    return clips


@dataclass
class Motion:
    """A clip on the SMPL-X skeleton, in metres, y-up world (see the module docstring); T = fitted frames."""

    name: str
    fps: float
    indices: np.ndarray  # (T,) frame numbers, from 0 at the clip's first fitted frame
    shape: np.ndarray  # (S,) the fitted shape every frame is posed with
    rest: np.ndarray  # (55, 3) rest joints (zero pose, pelvis where the model puts it)
    rotations: np.ndarray  # (T, 55, 3, 3) local joint rotations; the pelvis's is its world rotation
    root: np.ndarray  # (T, 3) world pelvis position
    joints: np.ndarray  # (T, 55, 3) the body model's own posed joints in the world
    world: np.ndarray  # (4, 4) OpenCV camera coordinates -> world
    focal: np.ndarray  # (2,) px
    center: np.ndarray  # (2,) px
    image_size: np.ndarray  # (2,) w, h

    @property
    def offsets(self) -> np.ndarray:
        """(55, 3) rest offset of each joint from its parent; the pelvis's rest position first."""
        parents = [max(p, 0) for p in SMPLX_PARENTS]
        return np.concatenate([self.rest[:1], self.rest[1:] - self.rest[parents][1:]])

    def forward_kinematics(self) -> tuple[np.ndarray, np.ndarray]:
        """World positions (T, 55, 3) and rotations (T, 55, 3, 3) of the joints from offsets and rotations."""
        offsets = np.repeat(self.offsets[None], len(self.root), 0)
        offsets[:, 0] = self.root
        pos, rot = forward_kinematics(torch.from_numpy(self.rotations), torch.from_numpy(offsets), SMPLX_PARENTS)
        return pos.numpy(), rot.numpy()

    def held_frames(self) -> np.ndarray:
        """Row of each frame from the first to the last fitted one: a frame without a fit holds the last fitted pose."""
        return np.searchsorted(self.indices, np.arange(self.indices[-1] + 1), side="right") - 1


def load_model(out_dir: Path, clips: list[Clip]) -> BodyModel:
    """The body model the run used: `body_model` of its frames, with config.yaml's SMPL-X files and gender."""
    name = str(_read_frame(clips[0].frames[0])["body_model"])
    config = out_dir / "config.yaml"
    cfg = OmegaConf.load(config) if config.is_file() else OmegaConf.create({"body": {}})
    if name == "smplx" and not cfg.body.get("model_path"):
        raise ExportError(f"{config}: no body.model_path for the SMPL-X fits; put it there (the run's --model-path)")
    try:
        if name == "smplx":
            return body.create(name, model_path=cfg.body.model_path, gender=cfg.body.get("gender"))
        return body.create(name)
    except (FileNotFoundError, ValueError) as e:
        raise ExportError(f"{clips[0].frames[0]}: body model {name!r}: {e}") from e


def load_motion(model: BodyModel, clip: Clip) -> Motion:
    """The clip's frames posed on the model and turned into the world (see the module docstring).
    Every frame is posed with the first frame's shape (a video's frames share one)."""
    frames = [_read_frame(p) for p in clip.frames]
    params = {
        k: np.stack([f[k] for f in frames]).astype(np.float32)
        for k in BODY_PARAMS
        if k in frames[0] and k not in SAVED_PER_ROW
    }
    shape = frames[0]["shape"].astype(np.float32)
    kw = dict(device=model.device, dtype=model.dtype)
    pose = np.concatenate(
        [params["global_orient"][:, None], params["body_pose"].reshape(-1, 21, 3), params["jaw_pose"][:, None]]
        + [np.zeros((len(frames), 2, 3), np.float32)]  # eyes
        + [params[f"{s}_hand_pose"].reshape(-1, 15, 3) for s in ("left", "right")],
        axis=1,
    )
    rotations = axis_angle_to_matrix(torch.from_numpy(pose).double()).numpy()
    up = FLIP @ rotations[:, 0, :, 1].mean(0)
    turn = np.eye(4)
    turn[:3, :3] = _turn_onto_y(up) @ FLIP
    joints, lowest = [], math.inf
    with torch.no_grad():
        rest = (
            model(shape=torch.as_tensor(shape[None], **kw)).joints[0, : len(SMPLX_JOINT_NAMES)].double().cpu().numpy()
        )
        for start in range(0, len(frames), _CHUNK):
            part = {k: torch.as_tensor(v[start : start + _CHUNK], **kw) for k, v in params.items()}
            n = len(part["global_orient"])
            out = model(shape=torch.as_tensor(shape, **kw).expand(n, -1), **part)
            joints.append(_apply(turn, out.joints[:, : len(SMPLX_JOINT_NAMES)].double().cpu().numpy()))
            lowest = min(lowest, float(_apply(turn, out.vertices.double().cpu().numpy())[..., 1].min()))
    world_joints = np.concatenate(joints)
    turn[:3, 3] = [-world_joints[0, 0, 0], -lowest, -world_joints[0, 0, 2]]
    world_joints += turn[:3, 3]
    rotations[:, 0] = turn[:3, :3] @ rotations[:, 0]
    first = frames[0]
    return Motion(
        name=clip.name,
        fps=clip.fps or _fps(first),
        indices=np.asarray(clip.indices) - clip.indices[0],
        shape=shape,
        rest=rest,
        rotations=rotations,
        root=world_joints[:, 0].copy(),
        joints=world_joints,
        world=turn,
        focal=first["focal"].astype(np.float64),
        center=first["center"].astype(np.float64),
        image_size=first["image_size"].astype(np.int64),
    )


_NEEDED = ("global_orient", "body_pose", "shape", "transl", "focal", "center", "image_size", "body_model")


def _read_frame(path: Path) -> dict[str, np.ndarray]:
    """A frame's arrays, hands and jaw zero when absent; ExportError naming the file when it is unusable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise ExportError(f"{path}: unreadable ({type(e).__name__}: {e}); fit it again or remove it") from e
    missing = [k for k in _NEEDED if k not in arrays]
    if missing:
        raise ExportError(f"{path}: no {', '.join(missing)}; not a frame run_fit.py wrote (fit it again or remove it)")
    for name, size in (("jaw_pose", (3,)), ("left_hand_pose", (15, 3)), ("right_hand_pose", (15, 3))):
        arrays.setdefault(name, np.zeros(size, np.float32))
    return arrays


def _fps(frame: dict[str, np.ndarray]) -> float:
    """The video's frame rate from its file (the frame's `input`), DEFAULT_FPS when unknown."""
    from keypoints.files import VIDEO_SUFFIXES
    from keypoints.types import KeypointsError
    from keypoints.video import video_info

    source = Path(str(frame.get("input", "")))
    if source.suffix.lower() in VIDEO_SUFFIXES and source.is_file():
        try:
            fps = video_info(source).fps
        except KeypointsError:
            return DEFAULT_FPS
        if 0 < fps < 1000:
            return float(fps)
    return DEFAULT_FPS


def _turn_onto_y(up: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction `up` onto +y (identity when `up` is nearly zero)."""
    norm = np.linalg.norm(up)
    if norm < 1e-6:
        return np.eye(3)
    u = up / norm
    axis = np.cross(u, [0.0, 1.0, 0.0])
    s, c = np.linalg.norm(axis), u[1]
    if s < 1e-9:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    angle = math.atan2(s, c)
    return axis_angle_to_matrix(torch.from_numpy(axis / s * angle)).numpy()


def _apply(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(4, 4) rigid transform applied to (..., 3) points."""
    return points @ transform[:3, :3].T + transform[:3, 3]
