"""The package's layering, read from the source with `ast` (nothing of dprec is imported).

Every module of `dprec/` is parsed; its imports of dprec (`import dprec.x`, `from dprec.x import
y`, relative imports, and imports inside functions, which run as surely as the others, only
later) are the arrows of the import graph. Imports under `if TYPE_CHECKING:` are not arrows:
they never run. `from dprec.x import y` is an arrow to `dprec.x.y` when that is a module, else to
the package `dprec.x` (its `__init__`).

The layers, from the ground up (`LAYERS`; a module takes the layer of its longest matching
pattern, and every module must match one):

0. the engine's leaves: errors, specs, metrics, sharding, state, lazy_rows, cli, and the
   self-contained subpackages data/, graph/, models/, objectives/, references/;
1. what a run is built from: steps, pair_scores, methods/, evaluation/, runs/, and
   references/select.py (it ranks with `evaluation.ranking`);
2. the config boundary: config/ (it reads the method cards);
3. the loop: train;
4. the entry points: main, __main__, tools/, sweeps/.

An arrow may stay in its layer or point down, never up, and no modules may import each other in
a circle: a module must be importable, and understood, before whatever imports it.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dprec"
PYPROJECT = PACKAGE.parent / "pyproject.toml"

# pattern → layer; "x.*" is the package x and everything under it.
LAYERS = {
    "dprec": 0,  # the package's face: __version__ only
    "dprec.errors": 0,
    "dprec.files": 0,
    "dprec.specs": 0,
    "dprec.metrics": 0,
    "dprec.sharding": 0,
    "dprec.state": 0,
    "dprec.lazy_rows": 0,
    "dprec.cli": 0,
    "dprec.data.*": 0,
    "dprec.graph.*": 0,
    "dprec.models.*": 0,
    "dprec.objectives.*": 0,
    "dprec.references.*": 0,
    "dprec.steps": 1,
    "dprec.pair_scores": 1,
    "dprec.methods.*": 1,
    "dprec.evaluation.*": 1,
    "dprec.runs.*": 1,
    "dprec.references.select": 1,
    "dprec.references.rows": 2,  # the model-free rows: select and evaluation.ranking
    "dprec.config.*": 2,
    "dprec.train": 3,
    "dprec.main": 4,
    "dprec.__main__": 4,
    "dprec.tools.*": 4,
    "dprec.sweeps.*": 4,
}
WINGS = ("config", "evaluation", "runs", "tools", "sweeps")
# The modules that the wings took over from the top level: none may come back there.
MOVED_INTO_WINGS = (
    *("run_config", "presets", "usage"),  # config/
    *("evaluation", "evaluator", "interpretation"),  # evaluation/
    *("rundir", "checkpoint", "tensorboard"),  # runs/
    *("run_loading", "recommend", "denoise_report", "plots", "report"),  # tools/
    *("grid", "tune", "noise_bench"),  # sweeps/
    *("prior", "roles"),  # methods/
)
MAX_TOP_LEVEL_MODULES = 12


def module_name(path: Path) -> str:
    """dprec/methods/base.py → 'dprec.methods.base'; a package's __init__.py → the package."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, package: str) -> set[str]:
    """The dprec modules that one import statement in `package` loads."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name.split(".")[0] == "dprec"}
    if node.level:  # relative: `from . import x`, `from ..y import z`
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != "dprec":
        return set()
    return {
        f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
        for alias in node.names
    }


def imports_of(name: str) -> set[str]:
    """The dprec modules that module `name` imports, at any depth of its code, leaving out the
    branches of `if TYPE_CHECKING:` (their `else:` runs, so it counts)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for branch in child.orelse:
                    visit_node(branch)
            else:
                visit_node(child)

    def visit_node(node: ast.AST) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.update(_targets(node, package))
        else:
            visit(node)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found - {name}


GRAPH = {name: imports_of(name) for name in MODULES}


def layer_of(name: str) -> int | None:
    """The layer of the longest pattern of `LAYERS` that matches `name`, or None."""
    matches = [
        pattern
        for pattern in LAYERS
        if name == pattern.removesuffix(".*")
        or (pattern.endswith(".*") and name.startswith(pattern[:-1]))
    ]
    return LAYERS[max(matches, key=len)] if matches else None


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


# --- the reader itself, on hand-made sources ----------------------------------------------------


def test_the_reader_finds_every_kind_of_import_and_skips_type_checking(tmp_path, monkeypatch):
    source = """
from __future__ import annotations
import json
import dprec.errors
from typing import TYPE_CHECKING
from dprec import specs
from dprec.runs import rundir
from . import lock
from .stop import RunStopped
if TYPE_CHECKING:
    from dprec.train import Setup
else:
    from dprec.metrics import metric_names
def late():
    from dprec.methods import get_method
"""
    (tmp_path / "dprec" / "runs").mkdir(parents=True)
    path = tmp_path / "dprec" / "runs" / "example.py"
    path.write_text(source)
    known = ("errors", "specs", "train", "metrics", "runs/rundir", "runs/lock", "runs/stop")
    modules = {f"dprec.{name.replace('/', '.')}": Path() for name in known}
    monkeypatch.setitem(globals(), "PACKAGE", tmp_path / "dprec")
    monkeypatch.setitem(
        globals(), "MODULES", {**modules, "dprec.methods": Path(), "dprec.runs.example": path}
    )
    assert imports_of("dprec.runs.example") == {
        "dprec.errors",
        "dprec.specs",
        "dprec.runs.rundir",
        "dprec.runs.lock",
        "dprec.runs.stop",
        "dprec.metrics",
        "dprec.methods",
    }


def test_the_circle_finder_finds_loops_and_only_loops():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert circles(graph) == [["a", "b", "c"]]


def test_a_module_takes_the_layer_of_its_longest_pattern():
    assert layer_of("dprec.references.ease") == 0
    assert layer_of("dprec.references.select") == 1
    assert layer_of("dprec.references") == 0
    assert layer_of("dprec.trainer") is None  # a prefix of a name is not a match


# --- the package --------------------------------------------------------------------------------


def test_the_package_is_organised_in_its_wings():
    for wing in WINGS:
        assert (PACKAGE / wing / "__init__.py").is_file(), f"dprec/{wing}/ is not a package"
    back_at_the_top = [name for name in MOVED_INTO_WINGS if (PACKAGE / f"{name}.py").exists()]
    assert back_at_the_top == []


def test_the_top_level_stays_small():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_every_console_script_is_an_entry_point_module():
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    homes = {target.partition(":")[0] for target in scripts.values()}
    assert {home for home in homes if layer_of(home) != max(LAYERS.values())} == set()
    assert homes <= set(MODULES)


def test_every_module_has_a_layer():
    assert [name for name in MODULES if layer_of(name) is None] == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_points_up(name):
    """An arrow to a higher layer: the lower module depends on what should depend on it."""
    mine = layer_of(name)
    upward = sorted(
        f"{name} (layer {mine}) -> {target} (layer {layer_of(target)})"
        for target in GRAPH[name]
        if layer_of(target) is not None and mine is not None and layer_of(target) > mine
    )
    assert not upward, "\n".join(upward)


def test_no_modules_import_each_other_in_a_circle():
    found = circles(GRAPH)
    ties = [
        f"{a} -> {b}" for loop in found for a in loop for b in sorted(GRAPH[a]) if b in set(loop)
    ]
    assert found == [], "\n".join(ties)
