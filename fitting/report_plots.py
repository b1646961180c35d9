"""The report's pictures: small copies of overlays, and per-video plots (matplotlib, Agg backend)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from body.skeleton import BODY_JOINT_NAMES
from configs.files import atomic_path, write_image
from fitting.report_items import Item

THUMB_SIZE = (240, 180)  # at most, px
ANGLE_JOINTS = ("left_knee", "right_knee", "left_elbow", "right_elbow")


def thumbnail(overlay: Path, target: Path) -> None:
    """A JPEG of `overlay` at most THUMB_SIZE, aspect kept."""
    from PIL import Image

    with Image.open(overlay) as image:
        small = image.convert("RGB")
        small.thumbnail(THUMB_SIZE)
    write_image(target, np.asarray(small))


def video_plot(target: Path, frames: list[Item], detected: tuple[np.ndarray, np.ndarray] | None) -> None:
    """A PNG of a video's reprojection error, joint angles (its lowest person id) and people per frame."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    done = [f for f in frames if f.done]
    numbers = sorted({f.index for f in frames})
    fig, axes = plt.subplots(3, 1, figsize=(8, 6.6), sharex=True, layout="constrained")
    for person in sorted({f.person for f in done}):
        px = dict.fromkeys(numbers, np.nan) | {f.index: f.px for f in done if f.person == person}
        axes[0].plot(numbers, list(px.values()), ".-", ms=3, label=f"person {person}")  # gaps where not fitted
    axes[0].set_ylabel("reprojection (px)")
    axes[0].legend(loc="best", fontsize="small")
    posed = [f for f in done if f.body_pose is not None]
    first = min((f.person for f in posed), default=0)
    posed = [f for f in posed if f.person == first]
    for joint in ANGLE_JOINTS:
        j = BODY_JOINT_NAMES.index(joint) - 1  # body_pose starts after the pelvis
        angles = dict.fromkeys(numbers, np.nan) | {f.index: np.degrees(np.linalg.norm(f.body_pose[j])) for f in posed}
        axes[1].plot(numbers, list(angles.values()), ".-", ms=2, label=joint.replace("_", " "))
    axes[1].set_ylabel(f"joint angle (deg)\nperson {first}")
    axes[1].legend(loc="best", fontsize="small", ncol=2)
    if detected is not None:
        axes[2].step(detected[0], detected[1], where="mid", color="0.6", label="people detected")
    fitted, missed = Counter(f.index for f in done), Counter(f.index for f in frames if not f.done)
    axes[2].plot(numbers, [fitted[n] for n in numbers], "o", ms=3, label="fitted")
    if missed:
        axes[2].plot(list(missed), list(missed.values()), "x", ms=5, color="tab:red", label="skipped or failed")
    axes[2].set_ylim(-0.3, axes[2].get_ylim()[1] + 0.8)  # room for the legend
    axes[2].set_ylabel("people")
    axes[2].set_xlabel("frame")
    axes[2].yaxis.get_major_locator().set_params(integer=True)
    axes[2].legend(loc="upper right", fontsize="small", ncol=3)
    for ax in axes:
        ax.grid(alpha=0.3)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
