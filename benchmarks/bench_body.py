"""Forward and forward+backward time of the body models (float32), printed as a table.

    python benchmarks/bench_body.py [--smplx-path DIR] [--repeats 5]

Without --smplx-path the SMPL-X row uses a synthetic model file with the real
array shapes (same cost as the real model; the values do not matter for speed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import body  # noqa: E402


def time_call(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


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

        def fwd_bwd(full_mesh: bool = True):
            p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
            model(**p, full_mesh=full_mesh).keypoints("coco23").square().sum().backward()

        f, fb = time_call(fwd, repeats, device), time_call(fwd_bwd, repeats, device)
        sparse = time_call(lambda: fwd_bwd(False), repeats, device)
        rows.append(
            f"| {name} | {device.type} | {b} | {f * 1e3:.1f} | {fb * 1e3:.1f} | {sparse * 1e3:.1f} | {b / sparse:.0f} |"
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
        "| model | device | batch | forward ms | fwd+bwd ms | fwd+bwd keypoints-only ms | keypoints-only bodies/s |",
        "|---|---|---|---|---|---|---|",
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
        "keypoints-only = full_mesh=False (Anny skins only the keypoint vertices)"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
