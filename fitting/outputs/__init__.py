"""Per-frame outputs (npz, obj, overlay png), resuming, the folder lock and the run summary, by subject:
`paths` (output keys and files, the settings digest), `resume` (the folder lock, the settings
check, what an earlier run left of a frame), `npz` (a person's .npz), `fits` (full parameters,
meshes and reprojection of fits), `summary` (the run's record) and `writer` (`Writer`, `Scene`).

A frame with several people writes each person's npz and obj under `KEY.person_<id>` (the id
is the person's index in the frame's detections, saved as `person_id`) and one overlay
`KEY.overlay.png` with every mesh. A run's `Writer` is the one place that writes outputs and
records what happened to each frame and person in its `Summary`.
"""

from fitting.outputs.fits import frame_reprojection, posed_vertices
from fitting.outputs.npz import BODY_PARAMS, saved_stamp
from fitting.outputs.paths import PERSON_INFIX, frame_paths, output_key
from fitting.outputs.resume import OutputError, check_settings, folder_lock
from fitting.outputs.summary import Summary, error_text
from fitting.outputs.writer import Scene, Writer

__all__ = [
    "BODY_PARAMS",
    "PERSON_INFIX",
    "OutputError",
    "Scene",
    "Summary",
    "Writer",
    "check_settings",
    "error_text",
    "folder_lock",
    "frame_paths",
    "frame_reprojection",
    "output_key",
    "posed_vertices",
    "saved_stamp",
]
