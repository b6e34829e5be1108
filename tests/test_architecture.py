"""The package's layers: data flows down, and no module imports from a layer above its own.

Every module is parsed; its imports of gradwidget modules are read from the
source (imports under ``if TYPE_CHECKING:`` are for annotations only and do
not count). A lazy import inside a display delegate, named in
`LAZY_DELEGATES`, may reach up: that is how a result shows itself without
importing matplotlib or ipywidgets.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gradwidget"

# Bottom first. A module may import from its own layer and the layers below.
LAYERS: list[set[str]] = [
    {"_options", "_params", "_progress", "examples"},  # parameter trees, options declared once
    {"_differences", "_evaluate", "_projection"},  # schemes and steps; calling J (or f, as <v, f>)
    {"_noise"},  # one model of each estimate's error
    {"_evidence"},  # what a check measured
    {"_verdict", "_shapes"},  # statuses, verdicts, the codes table; a backward's gradients matched to arguments
    {"_causes", "_shape_findings", "_jacobian_patterns"},  # what a wrong block's numbers, shape or Jacobian say
    {"_layer_diagnoses"},  # the specialist: what only checks of array-valued functions measure
    {"_diagnose"},  # evidence -> diagnoses: the general explainer, which calls the specialist
    {"_result"},  # CheckResult, BlockReport
    # the coordinate and directional paths; the second point; kinks moved together; float32 checked in float64
    {"_entries", "_directions", "_second_point", "_subgradient", "_precision", "_contract"},
    {"_check", "_array_checks", "_layer"},  # orchestration: check; the checks of array-valued functions; layers
    {"_frameworks"},  # a framework's function and its autodiff as a layer
    {"_colour", "_report", "_plot", "_sweep", "_pairs_view"},  # how a result shows
    {"_magic", "widget", "grading", "demo", "torch", "jax", "__init__", "__main__"},  # entry points
]

LAZY_DELEGATES = {
    ("_result", "__str__"), ("_result", "_repr_html_"), ("_result", "plot"), ("_result", "widget"),
    ("_result", "plot_eps_sweep"),
}


def layer_of(module: str, layers: list[set[str]] = LAYERS) -> int:
    for level, members in enumerate(layers):
        if module in members:
            return level
    raise KeyError(module)


def package_modules() -> dict[str, Path]:
    """Module name (a widget/ file counts as ``widget``) -> file, for every .py file of the package."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        modules[str(relative.with_suffix("")).replace("/", ".")] = path
    return modules


def unit_of(module: str) -> str:
    """The layer unit a module belongs to: its first dotted part (``widget.panel`` -> ``widget``)."""
    return module.split(".")[0]


def imports(source: str, module: str) -> list[tuple[str, str | None, int]]:
    """(imported unit, enclosing function or None, line) for each gradwidget import, TYPE_CHECKING skipped."""
    found: list[tuple[str, str | None, int]] = []
    package_depth = module.count(".")  # widget.panel lives one package below gradwidget

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other, function)
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, function or child.name)
                continue
            if isinstance(child, ast.ImportFrom):
                for target in _targets(child, package_depth):
                    found.append((target, function, child.lineno))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("gradwidget."):
                        found.append((alias.name.split(".")[1], function, child.lineno))
            visit(child, function)

    visit(ast.parse(source), None)
    return found


def _targets(node: ast.ImportFrom, package_depth: int) -> list[str]:
    if node.level == 0:
        parts = (node.module or "").split(".")
        return [parts[1]] if parts[0] == "gradwidget" and len(parts) > 1 else []
    if node.level <= package_depth:  # inside a subpackage, relative to itself: same unit
        return []
    if node.module:
        return [node.module.split(".")[0]]
    return [alias.name if (PACKAGE / f"{alias.name}.py").exists() else "__init__" for alias in node.names]


def upward_imports(modules: dict[str, str], layers: list[set[str]] = LAYERS) -> list[str]:
    """Every import of a module from a layer above its own (outside the allowed delegates), described."""
    problems = []
    for module, source in modules.items():
        unit = unit_of(module)
        for target, function, line in imports(source, module):
            if target == unit or layer_of(target, layers) <= layer_of(unit, layers):
                continue
            if function is not None and (unit, function) in LAZY_DELEGATES:
                continue
            problems.append(f"{module}.py:{line} imports {target} (layer {layer_of(target, layers)}) "
                            f"from layer {layer_of(unit, layers)}")
    return problems


def test_every_module_has_a_layer() -> None:
    for module in package_modules():
        layer_of(unit_of(module))


def test_no_module_imports_from_above() -> None:
    sources = {module: path.read_text() for module, path in package_modules().items()}
    assert upward_imports(sources) == []


@pytest.mark.parametrize(("module", "source"), [
    ("_noise", "from ._result import CheckResult\n"),
    ("_params", "def f():\n    from ._check import check\n"),
    ("_result", "def summary(self):\n    from ._check import check\n"),  # not a named delegate
    ("_evidence", "import gradwidget._diagnose\n"),
    ("widget.panel", "from ..above import anything\n"),  # from a subpackage, relative to the package
])
def test_an_upward_import_is_caught(module: str, source: str) -> None:
    assert len(upward_imports({module: source}, [*LAYERS, {"above"}])) == 1


def test_type_checking_imports_and_named_delegates_are_allowed() -> None:
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._check import Problem\n"
              "class CheckResult:\n    def plot(self):\n        from ._plot import heatmaps\n")
    assert upward_imports({"_result": source}) == []


def test_the_grading_worker_imports_only_the_standard_library_and_numpy() -> None:
    """It runs beside student code: nothing of gradwidget may be loaded there."""
    tree = ast.parse((PACKAGE / "grading" / "sandbox" / "_worker.py").read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))
    assert modules - {"numpy", "__future__"} <= set(__import__("sys").stdlib_module_names)


LONGEST = 165  # lines of a class or function: about 160, so that each one can be read whole


def test_no_class_or_function_is_longer_than_about_160_lines() -> None:
    long = []
    for module, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.end_lineno - node.lineno > LONGEST:
                long.append(f"{module}.{node.name}: {node.end_lineno - node.lineno} lines")
    assert not long, long
