"""Real mocap clips for the prior's tests, read from the shared archives (a few at a time)."""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import torch

HDM05 = "hdm05_asfamc.tar.xz"


def extract_actor_clips(mocap: Path, actor: str, clips: slice, dest: Path) -> Path:
    """Extract HDM05 actor's .asf and a slice of its .amc clips (sorted by name) under dest.

    Returns dest, laid out like the archive (hdm05_asfamc/<actor>/...).
    """
    with tarfile.open(mocap / HDM05) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and f"/{actor}/" in m.name]
        amc = sorted((m for m in members if m.name.endswith(".amc")), key=lambda m: m.name)[clips]
        asf = [m for m in members if m.name.endswith(".asf")]
        tar.extractall(dest, members=asf + amc, filter="data")
    return dest


def actor_poses(mocap: Path, actor: str, clips: slice, dest: Path, fps: float = 10.0) -> torch.Tensor:
    """Body poses (N, 21, 3) of some HDM05 clips of one actor, subsampled to about `fps`."""
    from prior.data import load_motion

    folder = extract_actor_clips(mocap, actor, clips, dest) / "hdm05_asfamc" / actor
    poses = []
    for amc in sorted(folder.glob("*.amc")):
        motion = load_motion(amc)
        poses.append(motion.body_pose[:: max(1, round(motion.fps / fps))])
    return torch.from_numpy(np.concatenate(poses).astype(np.float32))
