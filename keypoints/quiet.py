"""One switch for the native libraries' console noise (MediaPipe, TF Lite,
absl, Warp): quiet unless BODYFIT_VERBOSE=1 or `set_verbose(True)`.

MediaPipe 0.10.21 logs through absl and TF Lite's own logger, which ignore
GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL and Python's absl.logging (checked:
the same lines appear with each of them set), so the only way to hide those
lines is to point file descriptor 2 elsewhere while MediaPipe runs. The
isolated detector's worker writes its fd 1 and 2 to a file of its own; the
in-process detector points fd 2 at /dev/null around each MediaPipe call.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Iterator

ENV = "BODYFIT_VERBOSE"

_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None
# True in the isolated worker: its fd 2 already goes to a file that the parent
# reads after a crash, so hiding it again would lose the crash message.
stderr_captured = False


def set_verbose(verbose: bool = True) -> None:
    """Show (True) or hide (False, the default) the native libraries' log lines.
    Sets BODYFIT_VERBOSE, so it holds for detector workers started afterwards
    and for Warp when an Anny body is created afterwards."""
    os.environ[ENV] = "1" if verbose else "0"


def is_verbose() -> bool:
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point fd 2 at /dev/null for the block (unless verbose). Nested and
    concurrent uses share one redirection, restored when the last one ends."""
    global _depth, _saved_fd
    if is_verbose() or stderr_captured:
        yield
        return
    with _lock:
        if _depth == 0:
            try:
                sys.stderr.flush()
            except (AttributeError, ValueError, OSError):
                pass
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            _saved_fd = saved
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved_fd is not None:
                os.dup2(_saved_fd, 2)
                os.close(_saved_fd)
                _saved_fd = None
