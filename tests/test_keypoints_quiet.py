"""The native libraries' log lines (MediaPipe, TF Lite, absl, Warp) are hidden
by default and shown again by keypoints.set_verbose(True) / BODYFIT_VERBOSE=1.
Each case runs in a fresh process: those libraries log once per process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keypoints

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "basketball1.png"

SCRIPT = """
import sys
import cv2
import keypoints
if sys.argv[1] == "verbose":
    keypoints.set_verbose(True)
from body.anny_body import _quiet_warp  # what AnnyBody runs before Anny starts Warp
_quiet_warp()
import warp
warp.init()
image = cv2.imread(sys.argv[2])
with keypoints.MediaPipeDetector(holistic=False, find_people=False) as d:  # in this process
    found = d(image).num_people
with keypoints.IsolatedDetector(holistic=False, find_people=False) as d:  # in a worker
    found_isolated = d(image).num_people
print(found, found_isolated)
"""


def test_set_verbose_switches_the_environment(monkeypatch):
    monkeypatch.delenv("BODYFIT_VERBOSE", raising=False)
    assert not keypoints.is_verbose()
    keypoints.set_verbose(True)
    assert os.environ["BODYFIT_VERBOSE"] == "1" and keypoints.is_verbose()
    keypoints.set_verbose(False)
    assert not keypoints.is_verbose()


def test_native_log_lines_hidden_unless_verbose():
    env = {k: v for k, v in os.environ.items() if k != "BODYFIT_VERBOSE"}
    env["PYTHONPATH"] = str(REPO)
    runs = {
        mode: subprocess.Popen(
            [sys.executable, "-c", SCRIPT, mode, str(EXAMPLE)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("quiet", "verbose")
    }
    out = {mode: run.communicate(timeout=300) for mode, run in runs.items()}
    for mode, run in runs.items():
        assert run.returncode == 0, out[mode]
        assert out[mode][0].splitlines()[-1] == "1 1", out[mode]
    # Quiet: not a line besides the result (Warp's banner goes to stdout, the rest to stderr).
    assert out["quiet"] == ("1 1\n", ""), out["quiet"]
    verbose = "".join(out["verbose"])
    assert "Warp" in verbose and "initialized" in verbose, verbose
    mediapipe_lines = [line for line in verbose.splitlines() if "XNNPACK" in line or line.startswith("W0000")]
    assert len(mediapipe_lines) >= 2, verbose  # from this process and from the worker
