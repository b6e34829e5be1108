"""The package's architecture: its layers, the imports between them, and its modules' size.

The declaration below is the package's layout: `LAYERS` names every module
(a subpackage counts as one unit: ``display``, ``grading``) from the bottom
up, with what each layer is for; ``docs/generate.py`` writes the layout page
from it, with each module's own first docstring line. Data flows down: a
module imports from its own layer and the layers below. Every import of a
gradwidget module counts, at the top of a module, inside a function (a lazy
import) or under ``if TYPE_CHECKING:``; the few that run against the layers
are declared in `UPWARD`, and apart from them the imports form no circle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gradwidget"

# Bottom first: (what the layer is for, its units).
LAYERS: list[tuple[str, set[str]]] = [
    ("parameter trees and the flat vector; options declared once; progress", {"_options", "_params", "_progress",
                                                                              "examples"}),
    ("schemes and steps; calling J (or f, as <v, f>)", {"_differences", "_evaluate", "_projection"}),
    ("one model of each estimate's error", {"_noise"}),
    ("what a check measured", {"_evidence"}),
    ("statuses, verdicts and the codes; a backward's gradients matched to its arguments", {"_verdict", "_returned"}),
    ("what a wrong block's numbers, shape or Jacobian say", {"_causes", "_shape_findings", "_jacobian_patterns"}),
    ("the specialist: what only checks of array-valued functions measure", {"_layer_diagnoses"}),
    ("evidence -> diagnoses: the general explainer, which calls the specialist", {"_diagnose"}),
    ("the result: CheckResult, its blocks, and the call that made it", {"_result"}),
    ("the paths of a check and its second looks", {"_coordinates", "_directions", "_follows_theta", "_subgradient",
                                                   "_precision", "_backward_contract"}),
    ("orchestration: check; layers, VJPs, JVPs, Jacobians, Hessians; the eps sweep",
     {"_check", "_array_checks", "_layer", "_sweep"}),
    ("a framework's function and its autodiff as a layer", {"_frameworks"}),
    ("how a result shows: report, heatmaps, panel (matplotlib and ipywidgets are imported here only)",
     {"display"}),
    ("entry points: the magic, grading, the front ends for frameworks",
     {"_magic", "widget", "grading", "demo", "torch", "_torch_modes", "_torch_precision", "jax", "__init__",
      "__main__"}),
]

UPWARD: dict[tuple[str, str], str] = {
    ("_result", "display"): "a result shows itself (str, HTML, plot, widget, eps sweep) through one lazy import",
}
"""The imports that run against the layers: (importing module, imported module) -> why."""
MOST_UPWARD = 4


def layer_of(unit: str, layers: list[tuple[str, set[str]]] = LAYERS) -> int:
    for level, (_, members) in enumerate(layers):
        if unit in members:
            return level
    raise KeyError(unit)


def package_modules() -> dict[str, Path]:
    """Module name (``display._plot``; a package's ``__init__.py`` by the package's name) -> its file."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)
        modules[name] = path
    return modules


def unit_of(module: str) -> str:
    """The layer unit a module belongs to: its first dotted part (``display._plot`` -> ``display``)."""
    return module.split(".")[0]


def imports(source: str, module: str, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) for each gradwidget import of ``module``: at the top, lazy or for type checking.

    ``known`` holds every module's name, to tell ``from .sandbox import _worker`` (a module) from
    ``from .sandbox import Outcome`` (a name of the package).
    """
    is_package = (PACKAGE / Path(*module.split("."))).is_dir()
    here = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(_known(alias.name.split(".")[1:], known), node.lineno) for alias in node.names
                      if alias.name.startswith("gradwidget.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1] if node.level > 1 else here
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif (node.module or "").split(".")[0] == "gradwidget":
                target = (node.module or "").split(".")[1:]
            else:
                continue
            for alias in node.names:
                found.append((_known([*target, alias.name], known, fallback=target), node.lineno))
    return [(name, line) for name, line in found if name != module]


def _known(parts: list[str], known: set[str], fallback: list[str] | None = None) -> str:
    """The longest module among ``parts``' prefixes (``__init__`` for the package itself)."""
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    if fallback:
        return _known(fallback, known)
    return "__init__"


def graph(sources: dict[str, str]) -> dict[str, list[tuple[str, int]]]:
    known = set(sources) | set(package_modules())
    return {module: imports(source, module, known) for module, source in sources.items()}


def upward_imports(sources: dict[str, str], layers: list[tuple[str, set[str]]] = LAYERS) -> list[str]:
    """Every import of a module from a layer above its own, described."""
    found = []
    for module, targets in graph(sources).items():
        for target, line in targets:
            if layer_of(unit_of(target), layers) > layer_of(unit_of(module), layers):
                found.append(f"{module}.py:{line} imports {target} (layer {layer_of(unit_of(target), layers)}) from "
                             f"layer {layer_of(unit_of(module), layers)}")
    return found


def circles(sources: dict[str, str], allowed: set[tuple[str, str]]) -> list[list[str]]:
    """The circles of imports between modules, once the ``allowed`` (module, module) imports are left out."""
    edges = {module: sorted({t for t, _ in targets if (unit_of(module), unit_of(t)) not in allowed
                             and (module, t) not in allowed}) for module, targets in graph(sources).items()}
    found, state = [], dict.fromkeys(edges, 0)  # 0 new, 1 on the path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in edges.get(module, []):
            if state.get(target) == 1:
                found.append([*path[path.index(target):], target])
            elif state.get(target) == 0:
                visit(target)
        path.pop()
        state[module] = 2

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in edges:
        if state[module] == 0:
            visit(module)
    return found


SOURCES = {module: path.read_text() for module, path in package_modules().items()}


def test_every_module_has_a_layer() -> None:
    for module in SOURCES:
        layer_of(unit_of(module))
    declared = {unit for _, units in LAYERS for unit in units}
    assert declared == {unit_of(module) for module in SOURCES}  # and nothing is declared that is not there


def test_only_the_declared_imports_run_against_the_layers_and_they_are_few() -> None:
    upward = upward_imports(SOURCES)
    declared = [f for f in upward if any(f.startswith(f"{a}.py") and f" imports {b} " in f for a, b in UPWARD)]
    assert sorted(set(upward) - set(declared)) == []
    assert len(upward) <= MOST_UPWARD and len(UPWARD) <= MOST_UPWARD, upward


def test_no_circle_beyond_the_declared_imports() -> None:
    assert circles(SOURCES, set(UPWARD)) == []


@pytest.mark.parametrize(("module", "source"), [
    ("_noise", "from ._result import CheckResult\n"),
    ("_params", "def f():\n    from ._check import check\n"),  # a lazy import counts
    ("_evidence", "import gradwidget._diagnose\n"),
    ("_verdict", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._result import CheckResult\n"),
    ("display._plot", "from ..grading import grade\n"),  # from a subpackage, relative to the package
])
def test_an_upward_import_is_caught(module: str, source: str) -> None:
    assert len(upward_imports({module: source})) == 1


def test_a_circle_is_caught_and_names_its_modules() -> None:
    sources = {"_check": "from ._result import CheckResult\n", "_result": "def f():\n    from ._check import run\n"}
    assert circles(sources, set()) == [["_check", "_result", "_check"]]
    assert circles(sources, {("_result", "_check")}) == []


def test_imports_of_names_and_of_modules_of_a_subpackage_are_told_apart() -> None:
    known = set(SOURCES)
    found = imports("from .sandbox import Outcome\nfrom .sandbox import _worker as w\nfrom .. import display\n",
                    "grading._scoring", known)
    assert [name for name, _ in found] == ["grading.sandbox", "grading.sandbox._worker", "display"]


def test_the_grading_worker_imports_only_the_standard_library_and_numpy() -> None:
    """It runs beside student code: nothing of gradwidget may be loaded there."""
    tree = ast.parse((PACKAGE / "grading" / "sandbox" / "_worker.py").read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))
    assert modules - {"numpy", "__future__"} <= set(sys.stdlib_module_names)


def test_matplotlib_ipywidgets_and_anywidget_are_imported_in_the_display_package_only() -> None:
    drawing = {"matplotlib", "ipywidgets", "anywidget", "marimo"}
    found = []
    for module, source in SOURCES.items():
        for node in ast.walk(ast.parse(source)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(name.split(".")[0] in drawing for name in names) and unit_of(module) != "display":
                found.append(f"{module}:{node.lineno}")
    assert found == []


LONGEST = 165  # lines of a class or function: about 160, so that each one can be read whole


def test_no_class_or_function_is_longer_than_about_160_lines() -> None:
    long = []
    for module, source in SOURCES.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.end_lineno - node.lineno > LONGEST:
                long.append(f"{module}.{node.name}: {node.end_lineno - node.lineno} lines")
    assert not long, long


def test_the_layout_page_names_every_module_with_its_docstring() -> None:
    sys.path.insert(0, str(PACKAGE.parent / "docs"))
    try:
        from generate import layout_page
    finally:
        sys.path.remove(str(PACKAGE.parent / "docs"))
    page = layout_page()
    for module, path in package_modules().items():
        name = "gradwidget" if module == "__init__" else f"gradwidget.{module}"
        assert f"| `{name}` |" in page, name
        assert ast.get_docstring(ast.parse(path.read_text())), f"{name} has no docstring to show"
