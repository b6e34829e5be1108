"""The options of a check, declared once.

`OPTIONS` lists every keyword option of :func:`gradwidget.check` with its
default, the values it accepts and its help text. `parse_options` validates
a call's options against it in one place; the ``%gradcheck`` flags, the
``%config GradCheckMagics`` traits and the panel's controls are made from the
same declaration, so the four cannot drift apart.
"""

from __future__ import annotations

import difflib
import math
import numbers
import operator
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["METHODS", "OPTIONS", "PRECISIONS", "CheckOptions", "InputError", "Option", "OptionError", "counted",
           "options_docstring", "parse_options"]

METHODS = ("central", "forward", "complex", "richardson")
PRECISIONS = ("auto", "as-given")


class InputError(ValueError, TypeError):
    """Something given to gradwidget cannot be used as it is.

    Raised for theta, an option, or what J or grad returned; the message
    names the parameter, block, shape or value at fault. It subclasses both
    ValueError and TypeError (as numpy's ``AxisError`` subclasses two), so
    code that catches either keeps working. An exception raised inside the
    user's own J or grad is never turned into one.
    """


class OptionError(InputError):
    """An option of :func:`gradwidget.check` has a value it does not accept.

    Attributes
    ----------
    option : str
        The option's name.
    """

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class Option:
    """One option: its name, default, what it accepts (in words), help, and its parser.

    ``kind`` says how a command line or a control spells it: ``"choice"``,
    ``"float"``, ``"int"``, ``"flag"`` (a bool), ``"tristate"`` (None, True or
    False), or one of ``"literal"`` (a Python literal, or a name that holds
    the value), ``"words"`` (comma-separated words) and ``"object"`` (the
    name of an object) for values that only code can give.
    """

    name: str
    default: Any
    accepts: str
    help: str
    kind: str
    parse: Callable[[Any], Any]
    doc_type: str
    choices: tuple[str, ...] = ()
    metavar: str | None = None

    def validate(self, value: Any) -> Any:
        """``value`` as the check uses it, or `OptionError` naming the option and what it accepts."""
        try:
            return self.parse(value)
        except (TypeError, ValueError, OverflowError):
            raise OptionError(self.name, f"{self.name}={_shown(value)} is not accepted: {self.name} must be "
                                         f"{self.accepts}") from None

    def numpydoc(self) -> str:
        """The option's entry in a numpydoc Parameters section."""
        text = textwrap.fill(self.help[0].upper() + self.help[1:] + ".", 72)
        return f"{self.name} : {self.doc_type}\n" + textwrap.indent(text, "    ")

    @property
    def configurable(self) -> bool:
        """Whether a default can be set for it as a plain value (``%config``)."""
        return self.kind in ("choice", "float", "int", "flag", "tristate")


def counted(number: int, noun: str) -> str:
    """``number`` and ``noun``, plural unless the number is 1: "1 entry", "3 entries", "2 arrays"."""
    plural = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"
    return f"{number} {noun if number == 1 else plural}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _real(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError
    return float(value)


def _positive(value: Any) -> float:
    number = _real(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError
    return number


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else parse(value)


def _whole(value: Any, smallest: int) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError
    number = operator.index(value)
    if number < smallest:
        raise ValueError
    return number


def _choice(value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError
    return bool(value)


def _shapes(value: Any) -> tuple[tuple[int, ...], ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) or not value:
        raise TypeError
    shapes = []
    for shape in value:
        dims = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
        shapes.append(tuple(_whole(d, 0) for d in dims))
    return tuple(shapes)


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise TypeError
    names = tuple(value)
    if not all(isinstance(name, str) and name for name in names) or len(set(names)) < len(names):
        raise ValueError
    return names


def _executor(value: Any) -> Any:
    if not (callable(getattr(value, "submit", None)) or callable(getattr(value, "get_executor", None))):
        raise TypeError
    return value


def _progress(value: Any) -> Any:
    if value is None or callable(value):
        return value
    return _flag(value)


OPTIONS: tuple[Option, ...] = (
    Option("method", "central", f"one of {', '.join(map(repr, METHODS))}",
           "the finite-difference scheme: 'central' (default), 'forward', 'complex' (complex step: exact "
           "to rounding, J must compute in complex numbers) or 'richardson' (4 calls an entry, most accurate)",
           "choice", lambda v: _choice(v, METHODS), "{" + ", ".join(map(repr, METHODS)) + "}", METHODS),
    Option("eps", None, "None or a positive finite number",
           "the step, used as given (eps=1e-4 is the classic choice); by default each entry gets its own "
           "step from the scale of theta there (abs(theta_i), or its block's size for parameters far below 1) and the "
           "precision J computes in", "float", _optional(_positive), "float, optional"),
    Option("tol", None, "None or a positive finite number",
           "when given, the verdict is the classic rule ||a - n|| / ||a + n|| < tol; by default each entry "
           "is judged against an estimate of its own numerical error", "float", _optional(_positive),
           "float, optional"),
    Option("precision", "auto", f"one of {', '.join(map(repr, PRECISIONS))}",
           "'auto' (default): a float32 or float16 theta whose J and grad follow its dtype (numpy code that "
           "computes in float64 when given float64) is checked in float64, and the float32 gradient compared with "
           "its float64 value at float32's rounding; 'as-given' checks in theta's own dtype",
           "choice", lambda v: _choice(v, PRECISIONS), "{" + ", ".join(map(repr, PRECISIONS)) + "}", PRECISIONS),
    Option("shapes", None, "None or a list of shapes such as [(10, 11), (1, 11)]",
           "block shapes of a flat, unrolled theta (row-major per block)", "literal", _optional(_shapes),
           "sequence of shapes, optional", metavar="SHAPES"),
    Option("names", None, "None or a list of distinct, non-empty strings",
           "names of the blocks: of an unrolled theta (with shapes=), of a list or tuple of arrays, or one "
           "name for a single array (default theta[0], theta[1], ..., or theta); a dict's keys name its own",
           "words", _optional(_names),
           "sequence of str, optional", metavar="A,B,..."),
    Option("sample", None, "None or a positive whole number",
           "check only this many entries per block, chosen at random (the others are NaN in numeric)",
           "int", _optional(lambda v: _whole(v, 1)), "int, optional", metavar="K"),
    Option("directions", None, "None or a positive whole number",
           "check along this many random directions (2 calls each) instead of entry by entry; when one "
           "disagrees, find and name the wrong entries by splitting the parameters into groups",
           "int", _optional(lambda v: _whole(v, 1)), "int, optional", metavar="K"),
    Option("vectorized", False, "True or False",
           "J accepts a batch: every array gets a leading batch axis (an unrolled vector becomes one point "
           "per row) and J returns one cost per row", "flag", _flag, "bool"),
    Option("executor", None, "None or a concurrent.futures.Executor (or a dask.distributed Client)",
           "evaluates J in parallel (a process pool, a dask Client, an ipyparallel view's executor); "
           "J must be picklable by it", "object", _optional(_executor),
           "concurrent.futures.Executor, optional", metavar="NAME"),
    Option("seed", None, "None or a whole number >= 0",
           "makes the random parts of the check (sampling, directions, noise probe, second point) repeatable",
           "int", _optional(lambda v: _whole(v, 0)), "int, optional"),
    Option("progress", None, "None, True, False, or a callable (done, total)",
           "show a progress bar; by default only when the check takes more than about a second; a callable "
           "gets (done, total) instead, and raising KeyboardInterrupt in it stops the check",
           "tristate", _progress, "bool or callable, optional"),
)

OPTION_NAMES = tuple(option.name for option in OPTIONS)

EXCLUSIVE = (("sample", "directions"), ("vectorized", "executor"))
"""Pairs of options that cannot both be given (each is a way to do the same job differently)."""


@dataclass(frozen=True)
class CheckOptions:
    """The validated options of one check (see `OPTIONS` for their meaning)."""

    method: str = "central"
    precision: str = "auto"
    eps: float | None = None
    tol: float | None = None
    shapes: tuple[tuple[int, ...], ...] | None = None
    names: tuple[str, ...] | None = None
    sample: int | None = None
    directions: int | None = None
    vectorized: bool = False
    executor: Any = None
    seed: int | None = None
    progress: bool | Callable[[int, int], None] | None = None

    def given(self) -> dict[str, Any]:
        """The options that differ from their defaults, as keyword arguments of `check`."""
        defaults = {option.name: option.default for option in OPTIONS}
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != defaults[f.name]}


def options_docstring() -> str:
    """The numpydoc entries of every option, for `check`'s docstring."""
    return "\n".join(option.numpydoc() for option in OPTIONS)


def parse_options(options: Mapping[str, Any]) -> CheckOptions:
    """Validate keyword options of `check`; `OptionError` names the first one at fault.

    Unknown names are rejected with a suggestion; options that exclude each
    other are named together.
    """
    unknown = [name for name in options if name not in OPTION_NAMES]
    if unknown:
        near = [name for name in OPTION_NAMES if unknown[0].startswith(name)] or difflib.get_close_matches(
            unknown[0], OPTION_NAMES, n=1)  # 'epsilon' means eps
        hint = f"; did you mean {near[0]!r}?" if near else f"; the options are {', '.join(OPTION_NAMES)}"
        raise OptionError(unknown[0], f"check() got an unknown option {unknown[0]!r}{hint}")
    values = {option.name: option.validate(options[option.name]) for option in OPTIONS if option.name in options}
    parsed = CheckOptions(**values)
    _check_combinations(parsed)
    return parsed


_WHY_EXCLUSIVE = {"sample": "they are two ways to check less",
                  "vectorized": "a vectorized J is already one call per batch"}


def _check_combinations(options: CheckOptions) -> None:
    given = options.given()
    for first, second in EXCLUSIVE:
        if first in given and second in given:
            raise OptionError(second, f"{first}= and {second}= do not combine: {_WHY_EXCLUSIVE[first]}; pick one")
    if options.executor is not None and sys.platform == "emscripten":
        raise OptionError("executor", "executor= needs a Python that can start processes or threads; this one "
                                      "(Pyodide, as in JupyterLite) cannot: leave executor out, and the check runs "
                                      "in this process")
    if options.directions is not None and options.method != "central":
        raise OptionError("directions", f"directions= uses central differences; method={options.method!r} "
                                        "does not apply")
    if options.names is not None and options.shapes is not None and len(options.names) != len(options.shapes):
        raise OptionError("names", f"names= has {len(options.names)} names for {len(options.shapes)} shapes")
