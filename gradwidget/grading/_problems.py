"""What a spec asks: problems, each a cost and its gradient, a layer, a Jacobian, a VJP or a Hessian.

A problem names the student's two functions (a value and its derivative:
``forward`` and ``backward``, ``cost`` and ``gradient``, ``function`` and
``jacobian``...), the arguments they are called with (drawn at every check
point, integers, literal values, data files, or a vector of parameters), the
arguments differentiated (``wrt``), and its scoring and tolerances. Its items
are the value (``forward``, ``cost``...) and one derivative per
differentiated argument (``dx``, ``dw``; a parameter vector's blocks by
name) or the derivative itself (``jacobian``); the CSV names them
``problem.item``.

A spec of ``[[problems]]`` holds named problems. A spec of ``[functions]``
and ``[parameters]`` holds one problem without a name, of kind ``gradient``,
whose first argument is the parameter vector; its items are named alone
(``cost``, ``Theta1``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .._params import Layout, flatten

__all__ = ["DISTRIBUTIONS", "KINDS", "LAYOUTS", "PROBLEM_KEYS", "Argument", "Problem", "Roles", "parse_problem"]

DISTRIBUTIONS = ("normal", "uniform")
LAYOUTS = ("unrolled", "list", "dict", "array")  # how a parameter vector reaches the functions


@dataclass(frozen=True)
class Roles:
    """What a kind of problem calls: its value function's key, its derivative's, and how the two are linked.

    ``link`` is ``"cache"`` (``out, cache = forward(*args)``, then
    ``backward(dout, cache)``), ``"pair"`` (the value function returns
    ``(value, gradients)``), ``"cotangent"`` (``vjp(*args, v)``) or ``"same"``
    (``derivative(*args)``).
    """

    value: str
    derivative: str
    link: str
    value_item: str  # the value's item, and its key in scoring and tolerance
    derivative_key: str  # the derivatives' key in scoring and tolerance

    @property
    def per_argument(self) -> bool:
        """Derivatives are one per differentiated argument (``dx``, ``dw``), not one array."""
        return self.derivative in ("backward", "gradient")


KINDS: dict[str, Roles] = {
    "gradient": Roles("cost", "gradient", "same", "cost", "gradient"),
    "layer": Roles("forward", "backward", "cache", "forward", "gradient"),
    "jacobian": Roles("function", "jacobian", "same", "forward", "jacobian"),
    "vjp": Roles("function", "vjp", "cotangent", "forward", "vjp"),
    "hessian": Roles("gradient", "hessian", "same", "gradient", "hessian"),
}

PROBLEM_KEYS: dict[str, str] = {
    "problems.name": "required; the problem's name: feedback's heading and its CSV columns' prefix (affine.dx)",
    "problems.kind": f"one of {', '.join(KINDS)} (default layer)",
    "problems.forward": "layer: the student's forward, called as forward(*arguments) -> (out, cache)",
    "problems.backward": "layer: the student's backward, called as backward(dout, cache) -> dx, dw, ... (one "
                         "per wrt argument, in order)",
    "problems.cost": "gradient: the cost, cost(*arguments) -> a number, or (number, gradients) without gradient",
    "problems.gradient": "gradient: the gradient function, gradient(*arguments) -> gradients; hessian: the "
                         "gradient, whose Hessian is checked",
    "problems.function": "jacobian and vjp: f(*arguments) -> an array",
    "problems.jacobian": "jacobian: jacobian(*arguments) -> shape f.shape + x.shape",
    "problems.vjp": "vjp: vjp(*arguments, v) -> the gradient of <v, f> with respect to x",
    "problems.hessian": "hessian: hessian(*arguments) -> shape x.shape + x.shape",
    "problems.reference": "a table of the reference's function names, when they differ from the student's",
    "problems.arguments": "one entry per argument, in order: { shape = [4, 5], distribution = \"normal\", "
                          "scale = 1.0 } drawn at each check point, { integers = [0, 10], shape = [4] }, "
                          "{ value = ... } (a literal) or { data = \"file.npy\" }",
    "problems.wrt": "the arguments differentiated (default: every drawn float argument; one for jacobian, vjp "
                    "and hessian)",
    "problems.tolerance": "relative tolerances per item kind: the value's key (forward, cost, function or "
                          "gradient) and the derivative's (gradient, jacobian, vjp or hessian); defaults as "
                          "[tolerance]",
    "problems.scoring": "points: the value's key (default 1) and the derivative's: a number split among the "
                        "arguments or a table per argument, e.g. gradient = { x = 1, w = 1, b = 1 } (default 1 "
                        "each)",
    "problems.limits": "call = seconds per call of this problem's functions (default: [limits] call)",
}


@dataclass(frozen=True)
class Argument:
    """One argument of a problem's functions: drawn, integers, a literal value, a data array or parameters.

    Attributes
    ----------
    name : str
    kind : str
        ``"drawn"``, ``"integers"``, ``"value"``, ``"data"`` or
        ``"parameters"`` (a vector of parameter blocks, drawn at every point).
    shape : tuple of int
        For drawn and integer arguments.
    distribution, scale : str, float
        For drawn ones and parameters: normal with sd ``scale``, or uniform
        in [-scale, scale].
    low, high : int
        For integers: drawn in ``[low, high)``.
    value : object
        A literal (as TOML gives it) or the data's array.
    file : str or None
        The data file, relative to the spec.
    blocks : tuple of (str, shape)
        For parameters: each block's name and shape.
    layout : str
        For parameters: how they reach the functions, one of `LAYOUTS`.
    """

    name: str
    kind: str
    shape: tuple[int, ...] = ()
    distribution: str = "normal"
    scale: float = 1.0
    low: int = 0
    high: int = 0
    value: Any = None
    file: str | None = None
    blocks: tuple[tuple[str, tuple[int, ...]], ...] = ()
    layout: str = "unrolled"

    @property
    def floating(self) -> bool:
        """A floating-point array: drawn, parameters, or data of floats."""
        return self.kind in ("drawn", "parameters") or (self.kind == "data" and
                                                        np.asarray(self.value).dtype.kind == "f")

    @property
    def parameters(self) -> Layout:
        """A parameter vector's blocks as the checker describes them (names, shapes, structure)."""
        names = [name for name, _ in self.blocks]
        arrays = [np.zeros(shape) for _, shape in self.blocks]
        if self.layout == "unrolled":
            return flatten(np.zeros(sum(a.size for a in arrays)), shapes=[a.shape for a in arrays], names=names)[0]
        if self.layout == "dict":
            return flatten(dict(zip(names, arrays)))[0]
        return flatten(arrays[0] if self.layout == "array" else arrays, names=names)[0]

    def passed(self, value: Any) -> Any:
        """The argument as the functions get it, copied.

        A parameter vector (flat) comes in its layout's structure, a 0-d
        array as a number.
        """
        if self.kind == "parameters":
            return self.parameters.views(np.array(value, dtype=np.float64))
        if isinstance(value, np.ndarray):
            return value.item() if value.ndim == 0 else value.copy()
        return value

    def toml(self) -> dict[str, Any]:
        """The argument as its spec entry (for a handout's spec)."""
        if self.kind == "drawn":
            return {"shape": list(self.shape), "distribution": self.distribution, "scale": self.scale}
        if self.kind == "integers":
            return {"integers": [self.low, self.high], "shape": list(self.shape)}
        if self.kind == "parameters":
            raise ValueError("a parameter vector is written as [parameters], not as a problem's argument")
        return {"data": self.file} if self.kind == "data" else {"value": self.value}


@dataclass(frozen=True)
class Problem:
    """One problem of a spec.

    Attributes
    ----------
    name : str
        Empty for the one problem of a spec of ``[functions]`` and ``[parameters]``.
    kind : str
    functions : tuple of (str, str or None)
        The student's value function and derivative function (None: the
        value function returns both).
    reference : tuple of (str, str or None)
        The reference's.
    arguments : tuple of Argument
    wrt : tuple of str
    points : dict
        Item -> points (``forward``, ``dx``, ``jacobian``...).
    tolerances : dict
        ``"value"`` and ``"derivative"`` -> a relative tolerance, or None
        (the default for the reference's dtype).
    call_seconds : float or None
    """

    name: str
    kind: str
    functions: tuple[str, str | None]
    reference: tuple[str, str | None]
    arguments: tuple[Argument, ...]
    wrt: tuple[str, ...]
    points: Mapping[str, float]
    tolerances: Mapping[str, float | None]
    call_seconds: float | None

    @property
    def roles(self) -> Roles:
        return KINDS[self.kind]

    @property
    def link(self) -> str:
        return "pair" if self.kind == "gradient" and self.functions[1] is None else self.roles.link

    @property
    def differentiated(self) -> tuple[Argument, ...]:
        return tuple(a for name in self.wrt for a in self.arguments if a.name == name)

    @property
    def blocks(self) -> tuple[str, ...]:
        """The derivative's blocks, as a comparison names them: ``x``, ``w``; ``Theta1``; ``jacobian``."""
        if not self.roles.per_argument:
            return (self.roles.derivative,)
        return tuple(name for a in self.differentiated for name in (
            [block for block, _ in a.blocks] if a.kind == "parameters" else [a.name]))

    @property
    def derivative_items(self) -> tuple[str, ...]:
        """The derivative's items: ``dx``, ``dw``; a parameter vector's block names; ``jacobian``."""
        if not self.roles.per_argument:
            return (self.roles.derivative,)
        return tuple(name for a in self.differentiated for name in (
            [block for block, _ in a.blocks] if a.kind == "parameters" else [f"d{a.name}"]))

    @property
    def value_item(self) -> str:
        return self.roles.value_item

    @property
    def items(self) -> tuple[str, ...]:
        """What is scored, as the CSV names it: ``affine.forward``, ``affine.dx``... (``cost``, ``Theta1`` unnamed)."""
        return tuple(self.item(item) for item in (self.value_item, *self.derivative_items))

    def item(self, short: str) -> str:
        """An item's full name: prefixed with the problem's name, when it has one."""
        return f"{self.name}.{short}" if self.name else short

    @property
    def heading(self) -> str:
        """How a message about the problem starts: ``problem 'affine': `` (nothing for an unnamed problem)."""
        return f"problem {self.name!r}: " if self.name else ""

    def flag(self, flag: str) -> str:
        """An integrity flag about this problem: ``numerical-gradient:affine`` (no suffix unnamed)."""
        return f"{flag}:{self.name}" if self.name else flag

    @property
    def floating(self) -> tuple[str, ...]:
        """Every floating-point array argument (a backward may return a gradient for each)."""
        return tuple(a.name for a in self.arguments if a.floating)

    def describe(self) -> str:
        first, second = self.functions
        return f"{first} and {second}" if second else first


def parse_problem(table: Any, load: Any) -> Problem:
    """Read one ``[[problems]]`` entry from a `_spec._Table`; ``load`` reads a data file (as [data] does)."""
    name = table.identifier("name", required=True)
    kind = table.choice("kind", "layer", tuple(KINDS))
    roles = KINDS[kind]
    first = table.identifier(roles.value, required=True)
    second = table.identifier(roles.derivative, required=kind != "gradient")
    for other in {r.value for r in KINDS.values()} | {r.derivative for r in KINDS.values()}:
        if other not in (roles.value, roles.derivative) and other in table.values:
            raise table.error(other, f"left out: a {kind} problem takes {roles.value} and {roles.derivative}",
                              table.values[other])
    reference = _reference_names(table, roles, first, second)
    arguments = _arguments(table, load)
    wrt = _wrt(table, kind, arguments)
    problem = Problem(name=name, kind=kind, functions=(first, second), reference=reference, arguments=arguments,
                      wrt=wrt, points={}, tolerances=_tolerances(table, roles), call_seconds=_call_seconds(table))
    return replace(problem, points=_points(table, problem))  # its items are known once the rest is


def _reference_names(table: Any, roles: Roles, first: str, second: str | None) -> tuple[str, str | None]:
    value = table.get("reference", {})
    keys = (roles.value, roles.derivative)
    if not isinstance(value, dict) or not set(value) <= set(keys) or not all(
            isinstance(v, str) and v.isidentifier() for v in value.values()):
        raise table.error("reference", f"a table of Python names with the keys {' and '.join(keys)}", value)
    return value.get(roles.value, first), value.get(roles.derivative, second)


def _arguments(table: Any, load: Any) -> tuple[Argument, ...]:
    value = table.get("arguments", required=True)
    if not isinstance(value, dict) or not value:
        raise table.error("arguments", "a table with one entry per argument, in order", value)
    found = []
    for name, entry in value.items():
        if not name.isidentifier():
            raise table.error(f"arguments.{name}", "named with a Python name")
        found.append(_argument(table, name, entry, load))
    return tuple(found)


def _argument(table: Any, name: str, entry: Any, load: Any) -> Argument:
    key = f"arguments.{name}"
    accepts = ("one of { shape = [...], distribution = ..., scale = ... }, { integers = [low, high], "
               "shape = [...] }, { value = ... } or { data = \"file.npy\" }")
    if not isinstance(entry, dict):
        raise table.error(key, accepts, entry)
    chosen = [k for k in ("integers", "value", "data") if k in entry]
    allowed = {"integers": {"integers", "shape"}, "value": {"value"}, "data": {"data"}}.get(
        chosen[0] if len(chosen) == 1 else "", {"shape", "distribution", "scale"})
    if len(chosen) > 1 or not set(entry) <= allowed or (not chosen and "shape" not in entry):
        raise table.error(key, accepts, entry)
    if chosen == ["value"]:
        _check_literal(table, key, entry["value"])
        return Argument(name, "value", value=entry["value"])
    if chosen == ["data"]:
        if not isinstance(entry["data"], str):
            raise table.error(f"{key}.data", "a .npy file name", entry["data"])
        return Argument(name, "data", value=load(key, entry["data"]), file=entry["data"])
    shape = _shape(table, key, entry.get("shape"))
    if chosen == ["integers"]:
        bounds = entry["integers"]
        if (not isinstance(bounds, list) or len(bounds) != 2 or not all(isinstance(b, int) and not isinstance(
                b, bool) for b in bounds) or bounds[0] >= bounds[1]):
            raise table.error(f"{key}.integers", "[low, high] with whole numbers low < high (high excluded)",
                              bounds)
        return Argument(name, "integers", shape, low=bounds[0], high=bounds[1])
    distribution = entry.get("distribution", "normal")
    if distribution not in DISTRIBUTIONS:
        raise table.error(f"{key}.distribution", f"one of {', '.join(DISTRIBUTIONS)}", distribution)
    scale = entry.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise table.error(f"{key}.scale", "a number > 0", scale)
    return Argument(name, "drawn", shape, distribution, float(scale))


def _shape(table: Any, key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                              for d in value):
        raise table.error(f"{key}.shape", "a list of whole numbers >= 1, such as [4, 5] ([] for one number)",
                          value)
    return tuple(value)


def _check_literal(table: Any, key: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise table.error(f"{key}.value", "a number, a string, a boolean, or a list or table of them",
                          value) from None


def _wrt(table: Any, kind: str, arguments: tuple[Argument, ...]) -> tuple[str, ...]:
    floating = [a.name for a in arguments if a.floating]
    value = table.get("wrt", floating if KINDS[kind].per_argument else floating[:1])
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, list) or not value or len(set(value)) != len(value)
            or not all(v in floating for v in value)):
        raise table.error("wrt", f"a list of floating-point arguments, from {', '.join(floating) or '(none)'}",
                          value)
    if not KINDS[kind].per_argument and len(value) != 1:
        raise table.error("wrt", f"one argument for a {kind} problem", value)
    return tuple(value)


def _points(table: Any, problem: Problem) -> dict[str, float]:
    value_key, derivative_key = problem.roles.value_item, problem.roles.derivative_key
    scoring = _subtable(table, "scoring", {value_key, derivative_key})
    points = {value_key: _number(table, f"scoring.{value_key}", scoring.get(value_key, 1.0))}
    given = scoring.get(derivative_key, float(len(problem.derivative_items)))
    if isinstance(given, dict):
        names = {f"d{n}": n for n in problem.wrt}
        if not problem.roles.per_argument or sorted(given) != sorted(names.values()):
            raise table.error(f"scoring.{derivative_key}",
                              f"a number or a table of points for each of {', '.join(problem.wrt)}", given)
        points.update({item: _number(table, f"scoring.{derivative_key}.{n}", given[n])
                       for item, n in names.items()})
    else:
        total = _number(table, f"scoring.{derivative_key}", given)
        points.update({item: total / len(problem.derivative_items) for item in problem.derivative_items})
    return points


def _tolerances(table: Any, roles: Roles) -> dict[str, float | None]:
    tolerance = _subtable(table, "tolerance", {roles.value_item, roles.derivative_key})
    for key, given in tolerance.items():
        if isinstance(given, bool) or not isinstance(given, (int, float)) or not 0 < given < 1:
            raise table.error(f"tolerance.{key}", "a number between 0 and 1", given)
    return {"value": tolerance.get(roles.value_item), "derivative": tolerance.get(roles.derivative_key)}


def _call_seconds(table: Any) -> float | None:
    limits = _subtable(table, "limits", {"call"})
    seconds = limits.get("call")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0):
        raise table.error("limits.call", "a number of seconds > 0", seconds)
    return None if seconds is None else float(seconds)


def _subtable(table: Any, key: str, allowed: set[str]) -> dict[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, dict) or not set(value) <= allowed:
        raise table.error(key, f"a table with the keys {', '.join(sorted(allowed))}", value)
    return value


def _number(table: Any, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise table.error(key, "a number >= 0", value)
    return float(value)
