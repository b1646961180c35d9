"""The packages' import arrows, read from the source with `ast` (nothing is imported):
no cycle between modules, and no arrow against the allowed direction

    configs (shared utilities, YAML defaults)  <-  body  <-  keypoints, prior  <-  fitting

(`body` imports none of the others; `keypoints` and `prior` import only `body` and `configs`;
`fitting` may import all). Imports inside functions count: a lazy import is still an arrow."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import FAST_FIT

ROOT = Path(__file__).resolve().parents[1]
ALLOWED: dict[str, set[str]] = {
    "configs": set(),
    "body": set(),
    "keypoints": {"body", "configs"},
    "prior": {"body", "configs"},
    "fitting": {"body", "configs", "keypoints", "prior"},
}
MAX_FUNCTION_LINES = 80
EXTRAS = ("lightning", "mediapipe", "ai_edge_litert", "pyrender")  # setup.cfg's train, detect, render


@dataclass(frozen=True)
class Arrow:
    """One import: the importing module, the imported one, and where it is written."""

    source: str
    target: str
    where: str

    def __str__(self) -> str:
        return f"{self.where} imports {self.target}"


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the checked packages (a package is its __init__)."""
    found = {}
    for package in ALLOWED:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is a known module (None for outside packages)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def arrows(module: str, path: Path, known: dict[str, Path]) -> list[Arrow]:
    """Every import of `module` into the checked packages, relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        found += [Arrow(module, t, where) for t in {_resolve(n, known) for n in names} if t and t != module]
    return found


def import_graph() -> dict[str, list[Arrow]]:
    known = modules()
    return {module: arrows(module, path, known) for module, path in known.items()}


def find_cycle(graph: dict[str, list[Arrow]]) -> list[Arrow] | None:
    """One import cycle between modules (its arrows in order), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[Arrow] = []

    def visit(module: str) -> list[Arrow] | None:
        state[module] = 1
        for arrow in graph[module]:
            if state.get(arrow.target) == 1:
                start = next(i for i, a in enumerate(path) if a.source == arrow.target) if path else 0
                return path[start:] + [arrow]
            if arrow.target not in state:
                path.append(arrow)
                cycle = visit(arrow.target)
                if cycle:
                    return cycle
                path.pop()
        state[module] = 2
        return None

    for module in graph:
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_the_walker_sees_the_packages() -> None:
    graph = import_graph()
    assert {"body", "prior.data.load", "fitting.pipeline", "keypoints.isolated", "configs.loader"} <= set(graph)
    targets = {a.target for a in graph["prior.data.load"]}
    assert {"prior.data.bvh", "prior.data.retarget"} <= targets  # absolute imports resolve to modules
    assert {"keypoints.types", "keypoints.mediapipe_detector"} <= {a.target for a in graph["keypoints.isolated"]}
    cyclic = {"a": [Arrow("a", "b", "a.py:1")], "b": [Arrow("b", "c", "b.py:1")], "c": [Arrow("c", "a", "c.py:9")]}
    assert [str(a) for a in find_cycle(cyclic)] == ["a.py:1 imports b", "b.py:1 imports c", "c.py:9 imports a"]


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(str(a) for a in cycle)


def test_imports_point_one_way() -> None:
    upward = [
        f"{arrow}: {top} may import {', '.join(sorted(allowed)) or 'none of the other packages'}"
        for module, found in import_graph().items()
        for arrow in found
        if (top := module.split(".")[0]) != (target := arrow.target.split(".")[0])
        and target not in (allowed := ALLOWED[top])
    ]
    assert not upward, "imports against the allowed direction:\n" + "\n".join(upward)


def test_prior_functions_are_short() -> None:
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted((ROOT / "prior").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def _run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)


def test_evaluation_does_not_import_lightning() -> None:
    result = _run_python(
        "import sys, prior.evaluation.evaluate, prior.vposer.latent_mixture; "
        "assert 'lightning' not in sys.modules, 'prior.evaluation imported lightning'"
    )
    assert result.returncode == 0, result.stderr


def test_the_shared_utilities_and_the_detector_worker_import_no_torch() -> None:
    result = _run_python(
        "import sys, configs.files, body.keypoint_sets, keypoints.isolated, keypoints.video; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    assert result.returncode == 0, result.stderr


def test_fitting_json_needs_no_extra(tmp_path: Path) -> None:
    """run_fit.py on OpenPose JSON without overlays imports none of the extras' packages."""
    folder = tmp_path / "json"
    folder.mkdir()
    shutil.copy(ROOT / "tests" / "data" / "keypoints" / "openpose_basketball1.json", folder / "b1_keypoints.json")
    args = [
        str(folder),
        "--out",
        str(tmp_path / "out"),
        "--quiet",
        *FAST_FIT,
        "output.overlay=false",
        "camera.image_size=[640,480]",
    ]
    result = _run_python(
        f"import sys, run_fit; rc = run_fit.main({args!r}); "
        f"print(sorted(m for m in {EXTRAS!r} if m in sys.modules)); sys.exit(rc)"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "[]", f"extras imported: {result.stdout.splitlines()[-1]}"
