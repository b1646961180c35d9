"""The report's 3D viewer: a run's GLB shown with three.js, everything inside the page.

three.js (npm `three`, MIT) is installed by scripts/setup.sh into `<venv>/share/bodyfit/three/`
(sha256 checked there; nothing is downloaded here). Chromium refuses ES modules over
file://, so the page carries its scripts: an import map of data: URLs of the three.js
modules (relative imports renamed `three/<package path>`), the viewer (report_viewer.js)
inline, and the GLB as base64. The original modules and their licence are copied to
`report_files/three/` beside the page.
"""

from __future__ import annotations

import base64
import html
import json
import posixpath
import re
import shutil
import sys
from importlib import resources
from pathlib import Path

from configs.files import atomic_path
from fitting.export_motion import ExportError, find_clips, load_model, load_motion

THREE_DIR = Path(sys.prefix) / "share" / "bodyfit" / "three"
ENTRY = "build/three.module.min.js"  # imported as "three"
ADDONS = ("examples/jsm/loaders/GLTFLoader.js", "examples/jsm/controls/OrbitControls.js")
_RELATIVE_IMPORT = re.compile(r"""(\b(?:from|import)\s*)(["'])(\.\.?/[^"']+?\.js)\2""")


def three_modules(root: Path = THREE_DIR) -> dict[str, str]:
    """The module build and the viewer's add-ons with every module they import (package path ->
    source, relative imports renamed `three/<package path>`); FileNotFoundError when one is missing."""
    modules: dict[str, str] = {}
    todo = [ENTRY, *ADDONS]
    while todo:
        name = todo.pop()
        if name in modules:
            continue
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing")

        def rename(m: re.Match) -> str:
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), m.group(3)))
            todo.append(target)
            return f"{m.group(1)}{m.group(2)}three/{target}{m.group(2)}"

        modules[name] = _RELATIVE_IMPORT.sub(rename, path.read_text(encoding="utf-8"))
    return modules


def viewer_glb(out_dir: Path) -> tuple[Path | None, str]:
    """The GLB the viewer shows: the first video's (first track's) `motion.glb`, else the first image's `x.png.glb`,
    exported (as fitting.export does) when missing or older than its frames; (None, why) when none."""
    try:
        clips = find_clips(out_dir)
    except ExportError:
        return None, "nothing was fitted, so there is no body to show"
    clip = next((c for c in clips if c.stem.parent != out_dir), clips[0])  # a video's clips live in its folder
    glb = clip.stem.with_name(clip.stem.name + ".glb")
    if glb.is_file() and glb.stat().st_mtime >= max(f.stat().st_mtime for f in clip.frames):
        return glb, ""
    from fitting.export_gltf import write_glb

    try:
        model = load_model(out_dir, [clip])
        write_glb(glb, load_motion(model, clip), model)
    except ExportError as e:
        return None, f"the body could not be exported: {e}"
    return glb, ""


def viewer_section(out_dir: Path, files: Path, three: Path | None = None) -> str:
    """The viewer's HTML (import map, canvas, play/pause, scripts), or a one-line note why there is none.
    Copies the three.js modules and licence it uses (from `three`, default THREE_DIR) to `files/three/`."""
    three = three or THREE_DIR
    try:
        modules = three_modules(three)
    except FileNotFoundError as e:
        return _note(f"No 3D view: three.js is not installed ({e}); run scripts/setup.sh.")
    glb, why = viewer_glb(out_dir)
    if glb is None:
        return _note(f"No 3D view: {why}.")
    for name in (*modules, "LICENSE"):
        if (three / name).is_file():
            with atomic_path(files / "three" / name) as tmp:
                shutil.copyfile(three / name, tmp)
    imports = {("three" if n == ENTRY else f"three/{n}"): _data_url(src) for n, src in modules.items()}
    script = resources.files("fitting").joinpath("report_viewer.js").read_text(encoding="utf-8")
    link = html.escape(glb.relative_to(out_dir).as_posix())
    return f"""<section id="viewer">
<h2>3D view <small><a href="{link}">{link}</a> (drag to turn, scroll to zoom)</small></h2>
<canvas></canvas>
<p><button type="button">Pause</button> <input type="range" min="0" max="1000" value="0" aria-label="time">
<span class="status"></span></p>
<script type="application/octet-stream" id="bodyfit-glb">{base64.b64encode(glb.read_bytes()).decode()}</script>
<script type="importmap">{json.dumps({"imports": imports})}</script>
<script type="module">
{script}</script>
</section>"""


def _data_url(source: str) -> str:
    return "data:text/javascript;base64," + base64.b64encode(source.encode()).decode()


def _note(text: str) -> str:
    return f'<section id="viewer"><h2>3D view</h2><p class="note">{html.escape(text)}</p></section>'
