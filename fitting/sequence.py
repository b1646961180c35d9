"""A folder of OpenPose frames read as one video: `run_fit.py FOLDER --sequence [--fps N] [--images DIR]`.

OpenPose writes a video's frames as `NAME_000000000123_keypoints.json`; they go in the order
of that number, and are fitted as a video is (`fitting.video.fit_footage`), under the
folder's name: `OUT/FOLDER/000123.npz`. What cannot join the sequence is reported and the
other frames are fitted: a file without a frame number (skipped), a second file with the
same number (skipped), a file or image that cannot be read (failed), and a frame whose image
has another size than the sequence's (failed; the most common size is the sequence's: one
camera per sequence).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

import keypoints
from fitting.inputs import OPENPOSE_SUFFIX, Item, find_image
from fitting.outputs import Writer, error_text
from fitting.video import Footage, Frame, frame_name
from keypoints.openpose_json import frame_number


def read_sequence(item: Item, writer: Writer, camera_size: tuple[int, int] | None) -> Footage:
    """The sequence's good frames, in order; the others reported to `writer`. KeypointsError
    when no frame is usable or no image size is known (no images and no `camera_size`)."""
    numbered: dict[int, Path] = {}
    for f in sorted(item.path.glob(f"*{OPENPOSE_SUFFIX}")):
        n = frame_number(f)
        if n is None:
            writer.skip(
                f"{item.name}/{f.name}",
                f"no frame number in its name (NAME_<number>{OPENPOSE_SUFFIX}), so no place in the sequence; rename it",
            )
        elif n in numbered:
            writer.skip(f"{item.name}/{f.name}", f"frame {n} again (also {numbered[n].name}); remove one of them")
        else:
            numbered[n] = f
    frames: list[Frame] = []
    images: dict[int, Path] = {}
    sizes: dict[int, tuple[int, int]] = {}
    for n, f in sorted(numbered.items()):
        stem = f.name[: -len(OPENPOSE_SUFFIX)]
        image = find_image(item.image, stem)
        try:
            kp = keypoints.read_openpose(f)
            if image is not None:
                h, w = keypoints.read_image(image).shape[:2]
                sizes[n], images[n] = (w, h), image
        except keypoints.KeypointsError as e:
            writer.fail(frame_name(item, n), error_text(e), e)
            continue
        frames.append(Frame(n, stem, f, replace(kp, frame_index=n)))
    if not frames:
        raise keypoints.KeypointsError(
            f"{item.path}: no readable numbered OpenPose frames (NAME_<number>{OPENPOSE_SUFFIX}); "
            "point to OpenPose's --write_json folder"
        )
    size = Counter(sizes.values()).most_common(1)[0][0] if sizes else camera_size
    if size is None:
        raise keypoints.KeypointsError(
            f"{item.path}: image size unknown; pass the frames' images (--images DIR) or camera.image_size=[w,h]"
        )
    odd = {n for n, s in sizes.items() if s != size}
    for n in sorted(odd):
        writer.fail(
            frame_name(item, n),
            f"{images[n]} is {sizes[n][0]}x{sizes[n][1]} px but the sequence's frames are {size[0]}x{size[1]} "
            "(one camera per sequence); resize it or remove the frame",
        )
    frames = [f for f in frames if f.index not in odd]
    images = {n: p for n, p in images.items() if n not in odd}

    def read(indices: list[int]) -> dict[int, np.ndarray | None]:
        return {i: keypoints.read_image(images[i]) if i in images else None for i in indices}

    def overlay_frames():
        return ((n, keypoints.read_image(p)) for n, p in sorted(images.items()))

    return Footage(item, frames, size, float(item.fps), read, overlay_frames if images else None)
