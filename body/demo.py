"""Pose the default body and write a mesh and a picture: `python -m body.demo --out DIR`."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from body.io import write_image, write_obj


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    args = parser.parse_args(argv)
    import body
    from body.render import look_at_camera, render_overlay

    model = body.create("anny")
    pose = torch.zeros(1, 21, 3)
    pose[0, 15, 2] = -math.radians(70)  # left shoulder: arm down
    pose[0, 16, 2] = math.radians(70)  # right shoulder: arm down
    pose[0, 0, 0] = -math.radians(30)  # left hip flexed forward
    pose[0, 3, 0] = math.radians(40)  # left knee bent
    with torch.no_grad():
        out = model(body_pose=pose)
    verts, faces = out.vertices[0].numpy(), model.faces.numpy()
    write_obj(args.out / "body.obj", verts, faces)
    cam, focal = look_at_camera(verts, (480, 640))
    write_image(args.out / "body.png", render_overlay(cam, faces, (focal, focal), (240, 320), (480, 640)))
    print(f"wrote {args.out / 'body.obj'} and {args.out / 'body.png'}")


if __name__ == "__main__":
    main()
