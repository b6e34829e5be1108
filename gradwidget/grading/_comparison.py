"""A student's derivative beside the reference's at one check point, explained by the checker's diagnoses.

The comparison is evidence as a check would gather it, with the reference in
the place of finite differences (``against="reference"``), so that the same
rules explain it in words of "the reference": a factor, a transpose, a
missing term; for a layer the shapes the backward returned, whether it is
linear in dout (from one more backward call at twice dout), and the
patterns of layer bugs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._array_checks import output_layout
from .._diagnose import diagnose
from .._evidence import Contract, Evidence, Subject
from .._noise import NoiseModel
from .._options import InputError
from .._params import Layout, flatten
from .._result import CheckResult
from .._verdict import BROADCAST, Diagnosis, Status
from ._derivatives import Derivatives, read_derivatives
from ._problems import Problem
from ._reference import PointAnswer

__all__ = ["LINEARITY", "comparison", "entry_tolerance", "summed_elsewhere"]

LINEARITY = 1e-6
"""A backward whose answer at 2 dout differs from twice its answer at dout by more than this (relative) is not linear.

Notes
-----
The two answers round differently, by about ``sqrt(k) * u`` relative for k
terms in a sum; 1e-6 leaves that far below, and a backward that squares,
clips or ignores dout far above.
"""


def entry_tolerance(reference: np.ndarray, tolerance: float) -> np.ndarray:
    """Each entry's tolerance: ``tolerance`` relative to the entry plus the array's RMS."""
    scale = max(float(np.sqrt(np.mean(reference.astype(np.float64) ** 2))) if reference.size else 0.0, 1e-12)
    return tolerance * (np.abs(reference.astype(np.float64)) + scale)


def comparison(problem: Problem, reference: PointAnswer, found: Derivatives, probe: Any, tolerance: float,
               first: bool) -> CheckResult | None:
    """The derivative's blocks in the reference's shapes against the reference's, diagnosed (None: no such block).

    ``probe`` is the backward's answer at twice the first point's dout, used
    when ``first``.
    """
    kept = [i for i, (a, d) in enumerate(zip(found.arrays, reference.derivatives)) if a.shape == d.shape]
    if not kept:  # every derivative in another shape: the notes say which
        return None
    names = [problem.blocks[i] for i in kept]
    layout, point = _compared(problem, reference, kept)
    student = np.concatenate([found.arrays[i].astype(np.float64).ravel() for i in kept])
    expected = np.concatenate([reference.derivatives[i].astype(np.float64).ravel() for i in kept])
    tolerances = np.concatenate([entry_tolerance(reference.derivatives[i], tolerance).ravel() for i in kept])
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.abs(student - expected) <= tolerances
    scalar = reference.value.ndim == 0
    evidence = Evidence(layout, point, "reference", student, expected, np.full(layout.size, np.nan), tolerances,
                        np.where(ok, int(Status.OK), int(Status.WRONG)).astype(np.int8),
                        NoiseModel(float(np.finfo(np.float64).eps), float(reference.value) if scalar else 1.0),
                        against="reference", subject=_subject(problem, reference.value, reference.cotangent),
                        contract=_contract(problem, found, probe if first else None, reference.arguments, names),
                        transposed=list(found.transposed),
                        mismatched={n: m for n, m in found.mismatched.items() if n in names})
    return CheckResult(evidence, diagnose(evidence))


def _compared(problem: Problem, reference: PointAnswer, kept: list[int]) -> tuple[Layout, np.ndarray]:
    """The layout of the blocks compared, and the point (the differentiated arguments, flat)."""
    (differentiated, *_) = problem.differentiated
    if differentiated.kind == "parameters":
        at = problem.arguments.index(differentiated)
        return differentiated.parameters, np.asarray(reference.arguments[at], np.float64)
    layout = flatten({problem.blocks[i]: np.zeros(reference.derivatives[i].shape) for i in kept})[0]
    if not problem.roles.per_argument:
        return layout, np.zeros(layout.size)
    by_name = {a.name: v for a, v in zip(problem.arguments, reference.arguments)}
    return layout, np.concatenate([np.asarray(by_name[problem.blocks[i]], np.float64).ravel() for i in kept])


def _subject(problem: Problem, value: np.ndarray, cotangent: np.ndarray | None) -> Subject:
    """A parameter vector's gradient is the classic check of J(theta); the other problems name their functions."""
    if problem.differentiated[0].kind == "parameters":
        return Subject()
    first, second = problem.functions
    outputs: Layout | None = output_layout(np.zeros(value.shape), first) if value.ndim else None
    return Subject("loss" if problem.kind == "gradient" else problem.kind, first, second or first, "the arguments",
                   f"{problem.name}: {problem.describe()} against the reference", outputs=outputs,
                   cotangent=None if cotangent is None else cotangent.astype(np.float64).ravel())


def _contract(problem: Problem, found: Derivatives, probe: Any, arguments: list[Any], compared: list[str]
              ) -> Contract:
    """The shapes' faults of the blocks compared, and (given the probe) linearity in dout."""
    contract = Contract(faults={name: fault for name, fault in found.faults.items() if name in compared})
    if probe is None or problem.link != "cache":
        return contract
    try:
        doubled = read_derivatives(problem, arguments, probe, problem.functions[1] or "").arrays
    except InputError:
        return contract
    for name, once, twice in zip(problem.blocks, found.arrays, doubled):
        if name not in compared or once.shape != twice.shape or not np.isfinite(once).all() or not np.any(once):
            continue
        if np.array_equal(once, twice):
            contract.constant_in_dout.append(name)
            contract.ignores_dout[name] = 0.5
            continue
        miss = float(np.linalg.norm(twice - 2 * once) / np.linalg.norm(2 * once))
        if miss > LINEARITY:
            contract.ignores_dout[name] = miss
    return contract


def summed_elsewhere(name: str, found: np.ndarray, expected: np.ndarray, dout: np.ndarray | None
                     ) -> Diagnosis | None:
    """A bias gradient that is dout summed over other axes than the reference's (so of another length)."""
    if dout is None or found.ndim != 1 or expected.ndim != 1 or dout.ndim < 2:
        return None

    def axes_summed(array: np.ndarray) -> tuple[int, ...] | None:
        for keep in range(dout.ndim):
            kept = np.moveaxis(dout, keep, 0).reshape(dout.shape[keep], -1).sum(axis=1)
            if kept.shape == array.shape and np.allclose(kept, array, rtol=1e-6, atol=1e-12):
                return tuple(k for k in range(dout.ndim) if k != keep)
        return None

    theirs, ours = axes_summed(found), axes_summed(expected)
    if theirs is None or ours is None:
        return None
    said = [axes[0] if len(axes) == 1 else axes for axes in (theirs, ours)]
    return Diagnosis(BROADCAST, f"d{name} is dout summed over axis {said[0]}; the reference sums over axis "
                     f"{said[1]} (`dout.sum(axis={said[1]})`: {name} is broadcast along that axis).", name)


