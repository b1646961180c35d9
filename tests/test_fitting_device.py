"""Device and dtype discipline of the fitter, checked on the CPU so that a CUDA run does not find it.

Real short fits (Anny or SMPL-X, the shipped VPoser, initialiser and temporal lifter, a real OpenPose
frame of two people, then one of them as a short video track) run under `Placement`, which records every op
mixing tensors of two devices or two floating dtypes, and every tensor factory that our code
(fitting/, body/, prior/) calls without a device. The CPU alone never shows a device mismatch;
a factory without a device is what puts a tensor on the CPU in the middle of a CUDA fit, so
flagging those is what keeps the CUDA path working. The same fit in float64 must stay float64,
and in float32 float32. On a machine with a GPU the fit runs there.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

import body
import keypoints
from fitting.config import load_config
from fitting.fitter import Fitter
from fitting.options import FitOptions
from fitting.pipeline import build_fitter
from fitting.priors import load_pose_space
from fitting.targets import FrameTargets, people_targets
from fitting.tracks import SequenceFit
from tests.conftest import FAST_FIT
from tests.smplx_fixture import synthetic_smplx_arrays, write_npz

ROOT = Path(__file__).resolve().parents[1]
OUR_CODE = tuple(str(ROOT / d) + "/" for d in ("fitting", "body", "prior"))
OPENPOSE = ROOT / "tests" / "data" / "keypoints" / "openpose_basketball1.json"
IMAGE_SIZE = (640, 480)  # tests/data/people/basketball1.png, the image it was detected on
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

# Calls that make a tensor; without `device=` they make it on the CPU whatever the fit runs on.
FACTORIES = frozenset(
    {
        torch.tensor,
        torch.as_tensor,
        torch.scalar_tensor,
        torch.zeros,
        torch.ones,
        torch.empty,
        torch.full,
        torch.arange,
        torch.eye,
        torch.linspace,
        torch.logspace,
        torch.rand,
        torch.randn,
        torch.randint,
        torch.randperm,
    }
)
# Ops that read their other tensor only for its dtype, device or shape, or convert it into their own.
CONVERSIONS = frozenset(
    {
        torch.Tensor.to,
        torch.Tensor.type_as,
        torch.Tensor.copy_,
        torch.Tensor.expand_as,
        torch.Tensor.view_as,
        torch.Tensor.reshape_as,
        torch._has_compatible_shallow_copy_type,  # nn.Module.to: may a parameter take the converted data,
        torch.Tensor.data.__set__,  # which it then does
    }
)
# Frames between a torch function and its caller (Python-level dispatch).
_DISPATCH = ("/torch/overrides.py", "/torch/utils/_device.py")
_TORCH = str(Path(torch.__file__).parent) + "/"


def _caller(frame: FrameType | None) -> FrameType | None:
    """The frame that called a torch function, above torch's own dispatch."""
    while frame is not None and frame.f_code.co_filename.endswith(_DISPATCH):
        frame = frame.f_back
    return frame


def _site(frame: FrameType | None) -> str:
    """file:line (function) of the first frame outside torch, relative to the repository."""
    while frame is not None and frame.f_code.co_filename.startswith(_TORCH):
        frame = frame.f_back
    if frame is None:
        return "?"
    name = frame.f_code.co_filename
    name = name[len(str(ROOT)) + 1 :] if name.startswith(str(ROOT)) else name
    return f"{name}:{frame.f_lineno} ({frame.f_code.co_name})"


def _tensors(values: tuple) -> list[torch.Tensor]:
    """The tensors among a call's arguments and in its list or tuple arguments (torch.cat's)."""
    found = []
    for v in values:
        if isinstance(v, torch.Tensor):
            found.append(v)
        elif isinstance(v, (list, tuple)):
            found += [t for t in v if isinstance(t, torch.Tensor)]
    return found


class Placement(TorchFunctionMode):
    """Records (in `problems`, once each) ops mixing devices or floating dtypes, and factories our
    code calls without a device. 0-dim CPU tensors may meet any device and 0-dim tensors do not
    promote dtypes (torch's rules), so they count for neither."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: dict[str, None] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and kwargs.get("device") is None:
            caller = _caller(sys._getframe(1))
            if caller is not None and caller.f_code.co_filename.startswith(OUR_CODE):
                self.problems[f"torch.{func.__name__} without device= at {_site(caller)}"] = None
        if func not in CONVERSIONS:
            tensors = _tensors((*args, *kwargs.values()))
            devices = {str(t.device) for t in tensors if t.dim() > 0 or t.device.type != "cpu"}
            floats = {str(t.dtype) for t in tensors if t.dim() > 0 and t.is_floating_point()}
            for kind, found in (("devices", devices), ("dtypes", floats)):
                if len(found) > 1:
                    name = getattr(func, "__qualname__", str(func))
                    self.problems[f"{name} mixes {kind} {sorted(found)} at {_site(sys._getframe(1))}"] = None
        return func(*args, **kwargs)


def _frames() -> list[FrameTargets]:
    """Both people of a real OpenPose frame (body, hands and face), as the fitter's targets."""
    people, why = people_targets(keypoints.read_openpose(OPENPOSE), IMAGE_SIZE, load_config())
    assert why is None and all(p.targets is not None for p in people) and len(people) == 2
    return [p.targets for p in people]


def test_placement_flags_what_a_cuda_run_trips_over():
    """The checker itself: a factory without a device in our code, a float32/float64 mix."""
    inside = compile("torch.zeros(3)\ntorch.zeros(3, device='cpu')", str(ROOT / "fitting" / "probe.py"), "exec")
    with Placement() as placement:
        exec(inside, {"torch": torch})
        torch.zeros(3)  # the test's own code is not ours
        torch.ones(2, dtype=torch.float64) + torch.ones(2)
        torch.ones(2) * torch.tensor(2.0, dtype=torch.float64)  # a 0-dim tensor does not promote
        torch.ones(2).to(torch.ones(2, dtype=torch.float64))
    problems = list(placement.problems)
    assert len(problems) == 2, problems
    assert problems[0] == "torch.zeros without device= at fitting/probe.py:1 (<module>)"
    assert "add mixes dtypes ['torch.float32', 'torch.float64'] at tests/test_fitting_device.py:" in problems[1]


# Each video start runs in one of Anny's two dtypes (both in both would double the time), on a
# window of two frames. lifter: the lifter reads the track and gives its starts (LiftedStart) and
# anchors; initialiser: the track resumes after its first frame (the still's fit, as if saved by an
# earlier run), which gives the shape, the second frame's warm start (GivenStart) and the frame
# the window holds. SMPL-X (the synthetic file) fits the still only, with its face (jaw, expression).
@pytest.mark.parametrize(
    "name, dtype, video_start",
    [("anny", torch.float32, "lifter"), ("anny", torch.float64, "initialiser"), ("smplx", torch.float64, None)],
    ids=["anny-float32-lifter", "anny-float64-initialiser", "smplx-float64-still"],
)
def test_a_fit_keeps_its_device_and_dtype(name, dtype, video_start, tmp_path, one_thread):
    video = ["video.window=2", "video.overlap=1", f"video.start={video_start}"] if video_start else []
    cfg = load_config(None, [*FAST_FIT, *video, f"device={DEVICE}"])
    frames = _frames()
    options = {}
    if name == "smplx":
        write_npz(tmp_path / "SMPLX_NEUTRAL.npz", synthetic_smplx_arrays())
        options["model_path"] = tmp_path
    terms: list[torch.Tensor] = []
    with Placement() as placement:
        model = body.create(name, device=DEVICE, dtype=dtype, **options)
        fitter = Fitter(model, load_pose_space(cfg.prior.kind, cfg.prior.path, DEVICE), FitOptions.of(cfg))
        fitter.on_iteration(lambda stage, iteration, rows, t: terms.extend(t.values()))
        results = fitter.fit_frames(frames)  # a still of two people
        if video_start:  # one of them as a video
            saved = {0: results[0].params} if video_start == "initialiser" else {}
            track = SequenceFit([(0, frames[0]), (1, frames[0])], fitter, saved.get)
            while track.remaining():
                results += track.step().values()
    assert not placement.problems, "\n".join(placement.problems)
    assert len(results) == {"lifter": 4, "initialiser": 3, None: 2}[video_start]
    assert all(r.is_finite() for r in results)
    want = np.dtype(str(dtype).removeprefix("torch."))
    for r in results:
        assert {k: v.dtype for k, v in r.params.items()} == {k: want for k in r.params}
        assert {s: p.dtype for s, p in r.projected.items()} == {s: want for s in r.projected}
    # Every iteration's objective terms, the prior's weights, and the lifter's reading of the track.
    assert terms and {(t.dtype, t.device) for t in terms} == {(dtype, model.device)}
    assert {(p.dtype, p.device) for p in fitter.space.vposer.parameters()} == {(dtype, model.device)}
    if video_start == "lifter":
        assert {(x.dtype, x.device) for x in vars(track.lifted).values()} == {(dtype, model.device)}


def test_a_cuda_device_torch_cannot_see_is_refused_in_one_line():
    missing = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"
    for make in (
        lambda: body.create("anny", device=missing),
        lambda: load_pose_space("vposer", None, missing),
        lambda: build_fitter(load_config(None, [f"device={missing}"])),
    ):
        with pytest.raises(ValueError) as error:
            make()
        message = str(error.value)
        assert "\n" not in message and f"device={missing} " in message, message
