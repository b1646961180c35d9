"""Where a fit's time goes: cProfile (cumulative and own time) and torch.profiler's op table.

    python benchmarks/profile_fit.py [--batch 1] [--top 25] [--device cpu] [key.sub=value ...]
    python benchmarks/profile_fit.py --anny-parts [--batch 16]

Fits `--batch` of bench_fit_speed.py's frames (synthetic BODY_25 views of held-out poses,
the default schedule, float32) after a warm-up fit of two frames, once under cProfile and
once under torch.profiler, and prints the objective calls and L-BFGS iterations, the
cProfile tables sorted by cumulative and by own time, and torch's ops by self CPU time.

`--anny-parts` profiles instead one forward and backward of Anny's keypoints as the fitter
calls it (`model(..., full_mesh=False).keypoints("body25")`, `--batch` rows, every parameter
and the shape requiring grad, float32) through the compact skeleton (`body.anny_skeleton`) and
through Anny's own code on the same points (`compact_skeleton = False`): torch ops by part
(forward ops outside any other op; backward nodes and their ops, each node attributed to the
part of the forward op that recorded it), the profiled times, and unprofiled medians.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import functools
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import body  # noqa: E402
from benchmarks.bench_fit_speed import benchmark_frames  # noqa: E402
from benchmarks.fit_data import prior_dataset  # noqa: E402
from fitting.config import load_config  # noqa: E402
from fitting.fitter import Fitter  # noqa: E402
from fitting.options import FitOptions  # noqa: E402
from fitting.priors import load_pose_space  # noqa: E402
from fitting.targets import FrameTargets  # noqa: E402


def timed_fit(fitter: Fitter, frames: list[FrameTargets]) -> str:
    """Fit `frames` once; a line with seconds, objective calls and mean L-BFGS iterations per frame."""
    calls = fitter.evaluations
    start = time.perf_counter()
    results = fitter.fit_frames(frames)
    seconds = time.perf_counter() - start
    iters = np.mean([r.iterations.sum() for r in results])
    return f"{seconds:.2f} s, {fitter.evaluations - calls} objective calls, {iters:.0f} L-BFGS iterations / frame"


def cprofile_tables(fitter: Fitter, frames: list[FrameTargets], top: int) -> str:
    """The fit under cProfile: the `top` functions by cumulative time, then by own time."""
    profile = cProfile.Profile()
    profile.enable()
    line = timed_fit(fitter, frames)
    profile.disable()
    out = io.StringIO()
    for key in ("cumulative", "tottime"):
        out.write(f"\n## cProfile by {key} ({line}, with cProfile's overhead)\n")
        pstats.Stats(profile, stream=out).sort_stats(key).print_stats(top)
    return out.getvalue()


def torch_table(fitter: Fitter, frames: list[FrameTargets], top: int) -> str:
    """The fit under torch.profiler: the `top` ops by self CPU time."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        line = timed_fit(fitter, frames)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=60)
    return f"\n## torch.profiler ops by self CPU time ({line}, with the profiler's overhead)\n{table}"


@contextlib.contextmanager
def _parts(compact: bool):
    """Label the body model's parts with `record_function("part:...")` scopes while inside."""
    import anny.models.orientation_refinement as refinement
    import anny.models.rigged_model as rigged
    import anny.skinning.skinning as skinning

    from body.anny_skeleton import PROFILE_PARTS, AnnySkeleton
    from body.base import BodyModel
    from body.output import BodyOutput

    saved = []

    def label(owner, name: str, part) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def labelled(*a, **k):
            with torch.profiler.record_function(f"part:{part(*a) if callable(part) else part}"):
                return original(*a, **k)

        saved.append((owner, name, original))
        setattr(owner, name, labelled)

    label(BodyModel, "__call__", "wrapper (BodyModel.forward, AnnyBody._skin)")
    label(BodyOutput, "keypoints", "keypoints (PointTable.evaluate)")
    if compact:
        for name, part in PROFILE_PARTS.items():
            label(AnnySkeleton, name, part)
    else:
        label(AnnySkeleton, "coefficients", "coefficients")
        # rest points and bone heads are Anny's apply_linear_blendshape on two templates
        label(skinning, "apply_linear_blendshape", lambda t, *_: "rest points" if len(t) > 100 else "bone heads")
        label(rigged.RiggedModelWithLinearBlendShapes, "get_rest_model", "rest model's other ops")
        label(rigged.roma, "special_procrustes", "procrustes")
        label(refinement.ChildOffsetOrientationRefiner, "forward", "refinement")
        label(rigged.RiggedModelWithLinearBlendShapes, "get_bone_transforms", "FK")
        label(rigged.RiggedModelWithLinearBlendShapes, "get_skinned_vertices", "skinning")
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def _scope(event, outermost: str = "") -> str:
    """The innermost part scope around a profiler event, but the refinement keeps its own Procrustes."""
    names = []
    while event is not None:
        if event.name.startswith("part:"):
            names.append(event.name[5:])
        event = event.cpu_parent
    if "refinement" in names:
        return "refinement"
    return names[0] if names else "other"


def anny_parts(batch: int, repeats: int = 20) -> str:
    """Op counts and times by part of one forward and backward of Anny's keypoints (see the docstring)."""
    torch.manual_seed(0)
    model = body.create("anny")
    r = lambda *s, scale=0.2: torch.randn(*s) * scale  # noqa: E731
    params = dict(
        global_orient=r(batch, 3),
        body_pose=r(batch, 21, 3),
        left_hand_pose=r(batch, 15, 3),
        right_hand_pose=r(batch, 15, 3),
        jaw_pose=r(batch, 3),
        transl=r(batch, 3, scale=1.0),
        shape=r(batch, 6, scale=0.3),
    )

    def call() -> None:
        p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        loss = model(**p, full_mesh=False).keypoints("body25").square().sum()
        torch.autograd.grad(loss, list(p.values()))

    out = io.StringIO()
    for compact in (False, True):
        model.compact_skeleton = compact
        for _ in range(3):
            call()
        with _parts(compact), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            call()
        events = prof.events()

        def backward_node(e):
            while e is not None:
                if e.name.startswith("autograd::engine::evaluate_function"):
                    return e
                e = e.cpu_parent
            return None

        def outermost_op(e) -> bool:
            if not e.name.startswith("aten::"):
                return False
            p = e.cpu_parent
            while p is not None:
                if p.name.startswith("aten::"):
                    return False
                p = p.cpu_parent
            return True

        forward_part: dict[int, str] = {}
        fwd_ops, bwd_nodes, bwd_ops = collections.Counter(), collections.Counter(), collections.Counter()
        fwd_us, bwd_us = collections.Counter(), collections.Counter()
        for e in events:
            if e.name.startswith("aten::") and backward_node(e) is None and e.sequence_nr >= 0:
                forward_part.setdefault(e.sequence_nr, _scope(e))
            if outermost_op(e) and backward_node(e) is None:
                fwd_ops[_scope(e)] += 1
                fwd_us[_scope(e)] += e.cpu_time_total
        unattributed = "unattributed (custom Functions' backward: Procrustes, Warp)"
        for e in events:
            if e.name.startswith("autograd::engine::evaluate_function"):
                part = forward_part.get(e.sequence_nr, unattributed)
                bwd_nodes[part] += 1
                bwd_us[part] += e.cpu_time_total
            elif outermost_op(e) and backward_node(e) is not None:
                bwd_ops[forward_part.get(backward_node(e).sequence_nr, unattributed)] += 1
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        title = "compact skeleton (body.anny_skeleton)" if compact else "Anny's own code on the same points"
        out.write(
            f"\n## {title}: {batch} rows, {torch.get_num_threads()} threads, unprofiled fwd+bwd median "
            f"{statistics.median(times) * 1e3:.2f} ms (min {min(times) * 1e3:.2f}) of {repeats}\n\n"
            "| part | forward ops | forward ms (profiled) | backward nodes | backward ops | backward ms (profiled) |\n"
            "|---|---|---|---|---|---|\n"
        )
        parts = sorted(set(fwd_ops) | set(bwd_nodes), key=lambda p: -(fwd_us[p] + bwd_us[p]))
        for p in parts + ["total"]:
            pick = (lambda c: sum(c.values())) if p == "total" else (lambda c: c[p])  # noqa: E731
            out.write(
                f"| {p} | {pick(fwd_ops)} | {pick(fwd_us) / 1e3:.2f} | {pick(bwd_nodes)} | {pick(bwd_ops)} "
                f"| {pick(bwd_us) / 1e3:.2f} |\n"
            )
    model.compact_skeleton = True
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1, help="frames fitted as one batch")
    parser.add_argument("--top", type=int, default=25, help="rows of each table")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dataset", help="folder with val.npz (default: the prior's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--anny-parts", action="store_true", help="Anny's keypoints' ops by part (see above)")
    parser.add_argument("overrides", nargs="*", help="fit config overrides")
    args = parser.parse_args(argv)
    if args.anny_parts:
        print(anny_parts(args.batch if args.batch > 1 else 16))
        return
    device = body.usable_device(args.device)
    cfg = load_config(None, [*args.overrides, f"device={device}"])
    model = body.create("anny", device=device)
    fitter = Fitter(model, load_pose_space(cfg.prior.kind, cfg.prior.path, device), FitOptions.of(cfg))
    frames = benchmark_frames(model, prior_dataset(args.dataset), max(args.batch, 2), np.random.default_rng(args.seed))
    fitter.fit_frames(frames[:2])  # warm-up
    batch = frames[: args.batch]
    threads = torch.get_num_threads()
    print(f"batch {args.batch}, {threads} torch threads, frames_per_call {cfg.optimizer.frames_per_call}")
    print(f"plain fit: {timed_fit(fitter, batch)}", flush=True)
    print(cprofile_tables(fitter, batch, args.top), flush=True)
    print(torch_table(fitter, batch, args.top))


if __name__ == "__main__":
    main()
