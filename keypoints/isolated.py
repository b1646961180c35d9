"""MediaPipe in a worker process, so that a native crash (SIGSEGV, abort)
costs one item instead of the whole run.

    with IsolatedDetector(holistic=True) as detector:
        kp = detector(image, "photo.jpg")         # as MediaPipeDetector
        frames = detector.track("clip.mp4")       # list[Keypoints], one per frame
        frames = detector.track("clip.mp4", search_every=5)  # every person of every frame

One long-lived worker (`python -c ...`, so the parent's __main__ is not
re-imported as multiprocessing's "spawn" would) holds a MediaPipeDetector.
Requests and replies go through two pipes as pickled messages; images are
sent as raw bytes. When the worker dies (a signal, an exit, EOF on the pipe)
or does not answer within `timeout_s`, the call raises KeypointsError naming
the source and the next call starts a fresh worker. Unless verbose (see
keypoints.quiet), the worker's stdout and stderr go to a temporary file, whose
last line is quoted in the crash message.
"""

from __future__ import annotations

import inspect
import os
import pickle
import signal
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import models
from .mediapipe_detector import MediaPipeDetector, as_bgr
from .quiet import is_verbose
from .types import Keypoints, KeypointsError

_ROOT = str(Path(__file__).resolve().parents[1])  # the folder holding the keypoints and body packages
# The worker imports no torch (~1.8 s and ~0.3 GB per worker): keypoints needs only body's torch-free tables.
_WORKER_CODE = "from keypoints.isolated import _serve; _serve()"
_DETECTOR_OPTIONS = frozenset(inspect.signature(MediaPipeDetector).parameters)
_START_TIMEOUT_S = 120.0  # importing MediaPipe and building the graph: ~1-2 s, more on a busy machine


class _WorkerDied(Exception):
    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


class IsolatedDetector:
    """`MediaPipeDetector` run in a worker process that is restarted after a crash.

    Same options as MediaPipeDetector (`landmarks` is resolved here: Heavy's
    fallback warning is logged in this process); `timeout_s` bounds each image (and each
    video frame in `track`): a worker that takes longer is killed and the item
    fails. The worker starts in the background when the detector is created.
    """

    def __init__(self, holistic: bool = True, *, timeout_s: float | None = 300.0, **options: Any) -> None:
        """`options`: MediaPipeDetector's keyword options (TypeError naming any other)."""
        unknown = sorted(set(options) - _DETECTOR_OPTIONS)
        if unknown:
            raise TypeError(
                f"IsolatedDetector got unknown options {unknown}; MediaPipeDetector takes {sorted(_DETECTOR_OPTIONS)}"
            )
        self.holistic = holistic
        # resolved here, so that Heavy's fallback warning is logged in this process
        self.landmarks = models.resolve_landmarks(options.get("landmarks", "heavy"))
        self.timeout_s = timeout_s
        self._options = {**options, "holistic": holistic, "landmarks": self.landmarks}
        self._proc: subprocess.Popen | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._log: Any = None
        self._ready = False
        self.restarts = 0  # workers started after the first (after a crash, a timeout or close())
        self._start()

    # -- worker life ---------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The current worker's process id (None when none is running)."""
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        req_r, req_w = os.pipe()  # parent -> worker
        rep_r, rep_w = os.pipe()  # worker -> parent
        verbose = is_verbose()
        self._log = None if verbose else tempfile.TemporaryFile()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([_ROOT, *filter(None, [env.get("PYTHONPATH")])])
        code = _WORKER_CODE
        safe_path = ["-P"] if sys.version_info >= (3, 11) else []  # no cwd on sys.path: a folder there can't shadow us
        args = [sys.executable, *safe_path, "-c", code, str(req_r), str(rep_w), repr(self._options)]
        try:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                pass_fds=(req_r, rep_w),
                env=env,
            )
        finally:
            os.close(req_r)
            os.close(rep_w)
        self._send = Connection(req_w, readable=False)
        self._recv = Connection(rep_r, writable=False)
        self._ready = False

    def _stop(self, kill: bool) -> int | None:
        """End the worker (politely: close its input; or kill it) and return its exit code."""
        proc, self._proc = self._proc, None
        for conn in (self._send, self._recv):
            if conn is not None:
                conn.close()
        self._send = self._recv = None
        code = None
        if proc is not None:
            if kill and proc.poll() is None:
                proc.kill()
            try:
                code = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def close(self) -> None:
        """Stop the worker: it exits when its input closes (killed if still starting)."""
        self._stop(kill=not self._ready)

    def __enter__(self) -> "IsolatedDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._stop(kill=True)
        except Exception:
            pass

    def _ensure_worker(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._stop(kill=True)  # died between items (killed, out of memory): not this item's fault
        if self._proc is None:
            self.restarts += 1
            self._start()
        if not self._ready:
            kind, value = self._reply(_START_TIMEOUT_S)
            if kind == "error":  # the detector could not be built (e.g. mediapipe missing): not an item's fault
                self._stop(kill=True)
                raise value
            self._ready = True

    def _reply(self, timeout_s: float | None) -> tuple[str, Any]:
        assert self._recv is not None
        try:
            if not self._recv.poll(timeout_s):
                raise _WorkerDied(f"did not answer within {timeout_s:g} s")
            return self._recv.recv()
        except (EOFError, OSError):
            raise _WorkerDied(self._exit_text()) from None

    def _exit_text(self) -> str:
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return "closed its pipe"
        return f"signal {-code}" if code < 0 else f"exit code {code}"

    def _failed(self, died: _WorkerDied, what: str, skipped: str) -> KeypointsError:
        """Kill the worker (a new one starts on the next call) and describe the failure."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()  # timed out: stop it writing to the log before reading the log
            self._proc.wait()
        last = self._last_message()
        self._stop(kill=True)
        if died.how.startswith("did not answer"):
            text = f"{what}: the detector {died.how}; {skipped} skipped"
        else:
            text = f"{what}: the detector crashed ({died.how}); {skipped} skipped"
        return KeypointsError(text + (f" (its last message: {last})" if last else ""))

    def _last_message(self) -> str:
        """The last line the worker wrote that is not a routine log line."""
        if self._log is None:
            return ""
        try:
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(0, size - 8192))
            lines = self._log.read().decode(errors="replace").splitlines()
        except (OSError, ValueError):
            return ""
        for line in reversed(lines):
            line = line.strip()
            if line and not _is_routine(line):
                return line[:300]
        return ""

    def _request(self, message: tuple, payload: np.ndarray | None) -> None:
        assert self._send is not None
        try:
            self._send.send(message)
            if payload is not None:
                self._send.send_bytes(memoryview(payload).cast("B"))
        except OSError:  # broken pipe: the worker is gone
            raise _WorkerDied(self._exit_text()) from None

    # -- detection -----------------------------------------------------------

    def __call__(
        self,
        image: np.ndarray | str | os.PathLike,
        source: str = "",
        *,
        color: str = "bgr",
        frame_index: int | None = None,
        timestamp_s: float | None = None,
    ) -> Keypoints:
        """As MediaPipeDetector.__call__ (`source` may also be given second).
        KeypointsError "<source>: the detector crashed (signal N); item skipped"
        when the worker dies on this image."""
        fields = dict(source=source, frame_index=frame_index, timestamp_s=timestamp_s)
        if isinstance(image, (str, os.PathLike)):  # read in the worker: decoding is isolated too
            source = source or str(image)
            message: tuple = ("path", os.path.abspath(image), {**fields, "source": source})
            payload = None
        else:
            payload = as_bgr(image, color, source)
            message = ("image", payload.shape, fields)
        try:
            self._ensure_worker()
            self._request(message, payload)
            kind, value = self._reply(self.timeout_s)
        except _WorkerDied as died:
            raise self._failed(died, source or "image", "item") from None
        except BaseException:  # e.g. KeyboardInterrupt mid-request: the worker's state is unknown
            self._stop(kill=True)
            raise
        if kind == "error":
            raise value
        return value

    def track(
        self,
        path: str | os.PathLike,
        *,
        on_frame: Callable[[Keypoints], None] | None = None,
        search_every: int | None = None,
    ) -> list[Keypoints]:
        """keypoints.track(path, holistic=...) run in the worker: one Keypoints per
        frame of a video file (MediaPipe's tracking mode, a fresh track per call); with
        `search_every`, every person of every frame instead (keypoints.video.detect_people).
        `on_frame` is called with each frame's result as it arrives (e.g. to move
        a progress bar). KeypointsError naming the video when it cannot be read or
        the worker crashes; then no frame of it is returned."""
        frames: list[Keypoints] = []
        try:
            self._ensure_worker()
            fields = {"name": str(path), "search_every": search_every}
            self._request(("track", os.path.abspath(path), fields), None)
            while True:
                kind, value = self._reply(self.timeout_s)
                if kind == "frame":
                    frames.append(value)
                    if on_frame is not None:
                        on_frame(value)
                    continue
                break
        except _WorkerDied as died:
            raise self._failed(died, f"{path} (after {len(frames)} frame(s))", "video") from None
        except BaseException:
            self._stop(kill=True)
            raise
        if kind == "error":
            raise value
        return frames


_ROUTINE_PREFIXES = ("INFO: ", "WARNING: All log messages before absl::InitializeLog()")


def _is_routine(line: str) -> bool:
    """MediaPipe's start-up and glog-style info/warning lines (I0000 ..., W0000 ...)."""
    if line.startswith(_ROUTINE_PREFIXES):
        return True
    return len(line) > 5 and line[0] in "IW" and line[1:5].isdigit() and line[5] == " "


# -- the worker ---------------------------------------------------------------


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def _serve() -> None:
    """Worker main loop: argv = request fd, reply fd, detector options."""
    import ast

    from . import quiet

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it then closes us
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except (ImportError, ValueError, OSError):
        pass  # a crash here is reported by the parent; no core file in the user's folder
    quiet.stderr_captured = True  # fd 2 already goes to the parent's log file (or the console when verbose)
    requests = Connection(int(sys.argv[1]), writable=False)
    replies = Connection(int(sys.argv[2]), readable=False)
    options = ast.literal_eval(sys.argv[3])
    try:
        from .mediapipe_detector import MediaPipeDetector
        from .video import detect_people, track

        detector = MediaPipeDetector(**options)
    except BaseException as e:
        replies.send(("error", _picklable(e)))
        return
    try:
        replies.send(("ready", os.getpid()))
    except OSError:
        return
    while True:
        try:
            kind, arg, fields = requests.recv()
            if kind == "image":
                image = np.frombuffer(requests.recv_bytes(), np.uint8).reshape(arg)
            elif kind == "path":
                image = arg
        except EOFError:
            return
        try:
            if kind == "track":
                if fields["search_every"] is None:
                    frames = track(arg, holistic=options["holistic"], landmarks=options["landmarks"])
                else:
                    frames = detect_people(arg, detector, fields["search_every"], fields["name"])
                for kp in frames:
                    kp.source = f"{fields['name']}#{kp.frame_index}"  # as the caller named the video
                    replies.send(("frame", kp))
                replies.send(("done", None))
            else:
                replies.send(("ok", detector(image, **fields)))
        except OSError:  # the parent is gone
            return
        except Exception as e:
            replies.send(("error", _picklable(e)))
