"""Draw novel poses from a VPoser and render them: `python -m prior.vposer.sample --out DIR`.

Writes DIR/samples.png (a grid of sampled poses on the default Anny body),
DIR/interpolation.gif (rows of latent interpolations between random latents, one
column per pair), DIR/samples.npz (the sampled body poses, axis-angle) and DIR/config.yaml
(the arguments).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from configs.files import atomic_path, write_image, write_npz, write_text
from prior.vposer.checkpoint import DEFAULT_CHECKPOINT, load
from prior.vposer.model import VPoser

VIEW_TURN = math.radians(25)  # turn the body about y so depth shows in the pictures


def render_frames(body_model: torch.nn.Module, poses: torch.Tensor, cell: int) -> np.ndarray:
    """Render poses (T, 21, 3) as (T, cell, cell, 3) uint8, one fixed camera framing them all."""
    from body.render import look_at_camera, render_overlay

    orient = poses.new_tensor([[0.0, VIEW_TURN, 0.0]]).expand(len(poses), 3)
    with torch.no_grad():
        verts = body_model(global_orient=orient, body_pose=poses).vertices.cpu().numpy()
    faces = body_model.faces.cpu().numpy()
    cam, focal = look_at_camera(verts.reshape(-1, 3), (cell, cell))
    cam = cam.reshape(verts.shape)
    return np.stack([render_overlay(v, faces, (focal, focal), (cell / 2, cell / 2), (cell, cell)) for v in cam])


def grid(images: np.ndarray, columns: int) -> np.ndarray:
    """Tile (N, H, W, 3) images into rows of `columns` (blank cells pad the last row)."""
    n, h, w, c = images.shape
    rows = -(-n // columns)
    canvas = np.full((rows * h, columns * w, c), 255, np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, columns)
        canvas[r * h : (r + 1) * h, k * w : (k + 1) * w] = img
    return canvas


@torch.no_grad()
def interpolations(model: VPoser, pairs: int, frames: int, seed: int) -> torch.Tensor:
    """Poses (frames, pairs, 21, 3) decoded along straight lines between random latents."""
    gen = torch.Generator().manual_seed(seed + 1)
    ends = torch.randn(2, pairs, model.latent_dim, generator=gen)
    t = torch.linspace(0.0, 1.0, frames)[:, None, None]
    z = (1 - t) * ends[0] + t * ends[1]
    return model.eval().decode(z.reshape(-1, model.latent_dim)).reshape(frames, pairs, 21, 3)


def write_gif(path: Path, frames: np.ndarray, fps: float) -> None:
    """Looping GIF from (T, H, W, 3) uint8 frames, written atomically."""
    import imageio.v3 as iio

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, frames, extension=".gif", duration=1000.0 / fps, loop=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="weights, official .ckpt or folder (default: shipped)"
    )
    parser.add_argument("--out", type=Path, default=Path("out/prior_samples"))
    parser.add_argument("--n", type=int, default=16, help="poses in the grid")
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=4, help="interpolations side by side in the GIF")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--cell", type=int, default=256, help="pixels per rendered body")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import body

    model, anny = load(args.checkpoint), body.create("anny")
    poses = model.sample(args.n, seed=args.seed)
    run = {**vars(args), "checkpoint": str(args.checkpoint or DEFAULT_CHECKPOINT), "out": str(args.out)}
    write_text(args.out / "config.yaml", OmegaConf.to_yaml(run))
    write_npz(args.out / "samples.npz", body_pose=poses.numpy())
    write_image(args.out / "samples.png", grid(render_frames(anny, poses, args.cell), args.columns))
    path = interpolations(model, args.pairs, args.frames, args.seed)
    cells = render_frames(anny, path.reshape(-1, 21, 3), args.cell).reshape(
        args.frames, args.pairs, args.cell, args.cell, 3
    )
    write_gif(args.out / "interpolation.gif", np.concatenate(list(cells.transpose(1, 0, 2, 3, 4)), axis=2), fps=12)
    print(f"wrote {args.out / 'samples.png'}, {args.out / 'interpolation.gif'} and {args.out / 'samples.npz'}")


if __name__ == "__main__":
    main()
