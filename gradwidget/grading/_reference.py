"""The instructor's reference: its cost and gradient at the check points.

The reference file is trusted: it is imported in the grader's own process,
never in a worker. A handout carries no reference file, only its answers at
the public points (`save_answers`), so that students can check themselves.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ._spec import Spec, SpecError, layout_of

__all__ = ["Answers", "argument", "load_answers", "reference_answers", "reference_function", "reference_functions",
           "reference_module", "save_answers"]


@dataclass(frozen=True)
class Answers:
    """The reference's cost and flat gradient at each check point (rows), and the dtype it computes in."""

    points: np.ndarray
    costs: np.ndarray
    gradients: np.ndarray
    dtype: np.dtype[Any]

    def __post_init__(self) -> None:
        if not (len(self.points) == len(self.costs) == len(self.gradients)):
            raise ValueError("answers must have one cost and one gradient per point")


def argument(array: np.ndarray) -> Any:
    """A [data] entry as functions get it: a 0-d array becomes a Python number."""
    return array.item() if array.ndim == 0 else array


def reference_module(spec: Spec) -> ModuleType:
    """The instructor's reference file, imported (in the trusted grader's process only)."""
    if spec.reference_file is None:
        raise SpecError(f"{spec.path.name}: [reference] has answers at the public points only; grading at "
                        "hidden points (and validate) need [reference] file")
    file = spec.reference_file
    name = "gradwidget_reference_" + hashlib.sha256(str(file).encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(name, file)
    if module_spec is None or module_spec.loader is None:
        raise SpecError(f"{spec.path.name}: [reference] file = {file.name!r} cannot be imported")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(file.parent))  # the reference may import helpers beside it
    try:
        module_spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(file.parent))
    return module


def reference_function(spec: Spec, module: ModuleType, key: str, wanted: str | None) -> Any:
    """The reference's function ``wanted`` (None stays None); a `SpecError` names ``key`` if it is missing."""
    function = getattr(module, wanted, None) if wanted else None
    if wanted and not callable(function):
        raise SpecError(f"{spec.path.name}: {key} = {wanted!r}: {Path(module.__file__ or '').name} defines no "
                        f"function {wanted!r}")
    return function


def reference_functions(spec: Spec) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """The reference's cost and gradient functions (imported from ``[reference] file``)."""
    module = reference_module(spec)
    return (reference_function(spec, module, "[reference] cost", spec.reference_cost),
            reference_function(spec, module, "[reference] gradient", spec.reference_gradient))


def reference_answers(spec: Spec, points: np.ndarray) -> Answers:
    """Evaluate the reference at each point (rows of ``points``)."""
    cost, gradient = reference_functions(spec)
    layout = layout_of(spec)
    arguments = [argument(spec.data[name]) for name in spec.arguments]
    costs, gradients, dtypes = [], [], []
    for point in points:
        if gradient is None:
            value, grad = cost(layout.views(point.copy()), *arguments)
        else:
            value, grad = cost(layout.views(point.copy()), *arguments), gradient(layout.views(point.copy()),
                                                                                  *arguments)
        costs.append(float(np.asarray(value).reshape(())))
        flat, transposed = layout.flatten_like(grad, "the reference's gradient")
        if transposed:
            raise SpecError(f"the reference's gradient comes back transposed for {', '.join(transposed)}")
        gradients.append(flat)
        dtypes.append(np.result_type(*(np.asarray(part).dtype for part in _parts(grad))))
    dtype = np.result_type(*dtypes) if dtypes else np.dtype(np.float64)
    return Answers(points, np.array(costs), np.array(gradients).reshape(len(points), spec.size), dtype)


def _parts(tree: Any) -> list[Any]:
    if isinstance(tree, dict):
        return list(tree.values())
    if isinstance(tree, (list, tuple)) and tree and not np.isscalar(tree[0]):
        return list(tree)
    return [tree]


def save_answers(answers: Answers, path: Path) -> None:
    """Write answers as an .npz of plain arrays (a handout's ``[reference] answers``)."""
    np.savez(path, points=answers.points, costs=answers.costs, gradients=answers.gradients,
             dtype=np.array(str(answers.dtype)))


def load_answers(spec: Spec, expected_points: np.ndarray) -> Answers:
    """Read ``[reference] answers``, checking that they are for this spec's public points."""
    assert spec.answers_file is not None
    with np.load(spec.answers_file, allow_pickle=False) as saved:
        answers = Answers(saved["points"], saved["costs"], saved["gradients"], np.dtype(str(saved["dtype"])))
    if answers.points.shape != expected_points.shape or not np.array_equal(answers.points, expected_points):
        raise SpecError(f"{spec.path.name}: [reference] answers = {spec.answers_file.name!r} are not for this "
                        "spec's public points (was the spec changed after the handout was made?)")
    return answers
