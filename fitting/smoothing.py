"""Zero-phase smoothing of a fitted video window's motion (`video.output_smoothing`).

The window refinement fits each frame's noisy 2D points as well as the temporal terms let it,
so its motion keeps a frame-to-frame jitter well above the motion's own acceleration; a
Gaussian of about one frame over the fitted variables takes it out (docs/video.md).
"""

from __future__ import annotations

import torch

from body.rotations import axis_angle_to_matrix, gaussian_smooth, matrix_to_axis_angle, smooth_rotations

SMOOTHED = ("pose", "global_orient", "transl")  # the body's motion; hands, jaw and face are left as fitted


def linked_runs(link: torch.Tensor) -> list[tuple[int, int]]:
    """(first, end) of each run of consecutive frames joined by a nonzero link (T-1,), end exclusive."""
    runs, first = [], 0
    for t, joined in enumerate((link > 0).tolist(), start=1):
        if not joined:
            runs.append((first, t))
            first = t
    runs.append((first, len(link) + 1))
    return runs


def smooth_motion(
    v: dict[str, torch.Tensor], link: torch.Tensor, frozen: torch.Tensor, sigma: float
) -> dict[str, torch.Tensor]:
    """One window's variables (1, T, ...) with the body pose (latent or axis-angle), the global
    orientation (as rotation matrices) and the translation averaged over a Gaussian of `sigma`
    frames within each run of linked frames (link (1, T-1)); `frozen` (1, T) frames keep theirs."""
    out = {k: (x.clone() if k in SMOOTHED else x) for k, x in v.items()}
    for first, end in linked_runs(link[0]):
        if end - first < 3:
            continue
        span = slice(first, end)
        out["pose"][0, span] = gaussian_smooth(v["pose"][0, span], sigma)
        out["transl"][0, span] = gaussian_smooth(v["transl"][0, span], sigma)
        turns = smooth_rotations(axis_angle_to_matrix(v["global_orient"][0, span]), sigma)
        out["global_orient"][0, span] = matrix_to_axis_angle(turns)
    held = frozen[0]
    for k in SMOOTHED:
        out[k][0, held] = v[k][0, held]
    return out
