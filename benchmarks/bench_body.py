"""Forward and forward+backward time of the body models (float32), printed as a table.

    python benchmarks/bench_body.py [--smplx-path DIR] [--repeats 5]

Without --smplx-path the SMPL-X row uses a synthetic model file with the real
array shapes (same cost as the real model; the values do not matter for speed).
Keypoints-only is `full_mesh=False` (the keypoints' per-bone rest points, at
the skeleton's cost); on Anny the paths it replaced are timed beside it: skinning
the keypoints' own ~2,300 vertices (`keypoint_vertices = True`) and Anny's own
code on the per-bone points (`compact_skeleton = False`, the path before
`body.anny_skeleton`); on SMPL-X the full mesh. Each time is the median of
`--repeats` calls, the paths interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import body  # noqa: E402


def time_calls(fns: list, repeats: int, device: torch.device) -> list[float]:
    """Median seconds per call of each function, the functions interleaved (after one warm-up each)."""
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats + 1):
        for fn, t in zip(fns, times):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if r:
                t.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def bench(model, name: str, device: torch.device, batches: list[int], repeats: int) -> list[str]:
    rows = []
    for b in batches:
        params = {
            "global_orient": torch.randn(b, 3, device=device) * 0.2,
            "body_pose": torch.randn(b, 21, 3, device=device) * 0.2,
            "transl": torch.randn(b, 3, device=device),
            "shape": torch.randn(b, model.num_shape, device=device) * 0.3,
        }

        def fwd():
            with torch.no_grad():
                model(**params).keypoints("coco23")

        def fwd_bwd(full_mesh: bool = True, vertices: bool = False, compact: bool = True):
            if hasattr(model, "keypoint_vertices"):
                model.keypoint_vertices, model.compact_skeleton = vertices, compact
            p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
            model(**p, full_mesh=full_mesh).keypoints("coco23").square().sum().backward()

        anny = hasattr(model, "keypoint_vertices")
        before = (lambda: fwd_bwd(False, True)) if anny else fwd_bwd
        paths = (
            [fwd, fwd_bwd, before] + ([lambda: fwd_bwd(False, False, False)] if anny else []) + [lambda: fwd_bwd(False)]
        )
        times = time_calls(paths, repeats, device)
        f, fb, old, new = times[0], times[1], times[2], times[-1]
        skeleton = f"{times[3] * 1e3:.1f} | {times[3] / new:.1f}x" if anny else "- | -"
        rows.append(
            f"| {name} | {device.type} | {b} | {f * 1e3:.1f} | {fb * 1e3:.1f} | {old * 1e3:.1f} | {skeleton} "
            f"| {new * 1e3:.1f} | {old / new:.1f}x | {b / new:.0f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smplx-path", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256])
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = [
        "| model | device | batch | forward ms | fwd+bwd ms | fwd+bwd keypoints, vertices ms "
        "| fwd+bwd keypoints, Anny's code on the points ms | its / keypoints-only "
        "| fwd+bwd keypoints-only ms | vertices / keypoints-only | keypoints-only bodies/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        smplx_path = args.smplx_path
        if smplx_path is None:
            from tests.smplx_fixture import synthetic_smplx_arrays, write_npz

            write_npz(Path(tmp) / "SMPLX_NEUTRAL.npz", synthetic_smplx_arrays())
            smplx_path = tmp
        for device in devices:
            for name, model in (
                ("anny", body.create("anny", device=device)),
                ("smplx", body.create("smplx", model_path=smplx_path, device=device)),
            ):
                rows += bench(model, name, device, args.batches, args.repeats)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32; keypoints = coco23; "
        "keypoints-only = full_mesh=False (per-bone rest points; Anny: body.anny_skeleton); keypoints, vertices = "
        "the path before it (Anny: the keypoints' own vertices; SMPL-X: the full mesh); Anny's code on the points = "
        "compact_skeleton=False; medians, paths interleaved"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
