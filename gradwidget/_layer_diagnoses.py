"""Diagnoses of the bugs layer code has: a backward that ignores dout, a broadcast not summed, a missing term.

These read what only checks of array-valued functions measure: the
backward's contract (`Contract`), the upstream gradient the check used, and
the whole Jacobian (`JacobianPairs`). `gradwidget._diagnose` calls them for
results of `check_layer`, `check_vjp`, `check_jvp`, `check_jacobian` and
`check_hessian`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ._diagnose import EXPLAINED, Diagnosis
from ._evidence import Evidence
from ._options import counted
from ._params import Block
from ._verdict import (
    BROADCAST,
    IGNORES_DOUT,
    LOCALIZED,
    MISSING_TERM,
    MUTATES_INPUT,
    PERMUTATION,
    RECURRENCE,
    TRANSPOSE,
    Status,
)

__all__ = ["contract_diagnoses", "layer_patterns"]

MIN_FIBRE = 4
"""Entries along an axis before an error that is affine along it says something (any 2 points are on a line)."""

OFF_SUPPORT = 0.2
"""Share of the numeric Jacobian's norm outside the analytic one's nonzeros that makes "only part of it" a finding."""


def contract_diagnoses(ev: Evidence) -> list[Diagnosis]:
    """The backward's contract failures: not linear in dout, shapes, harmful writes."""
    contract, subject = ev.contract, ev.subject
    if contract is None:
        return []
    found = [Diagnosis(code, message, name) for name, (code, message) in contract.faults.items()]
    constant = [name for name in contract.ignores_dout if name in contract.constant_in_dout]
    nonlinear = {name: miss for name, miss in contract.ignores_dout.items() if name not in constant}
    if constant:
        found.append(Diagnosis(IGNORES_DOUT, (
            f"{subject.gradient} returns the same {_gradients(constant)} whatever dout is: it returns the local "
            "derivative alone, or uses ones in place of dout. Multiply by dout (the chain rule)."),
            constant[0] if len(constant) == 1 else None))
    if nonlinear:
        worst = max(nonlinear.values())
        found.append(Diagnosis(IGNORES_DOUT, (
            f"{subject.gradient}'s {_gradients(list(nonlinear))} {'does' if len(nonlinear) == 1 else 'do'} not scale "
            f"with dout: {subject.gradient}(dout1) + {subject.gradient}(dout2) differs from "
            f"{subject.gradient}(dout1 + dout2) by up to {worst:.1e} of its size. A backward is linear in dout: look "
            "for a term without dout, `np.ones_like(dout)`, or dout squared or clipped."),
            next(iter(nonlinear)) if len(nonlinear) == 1 else None))
    if contract.writes:
        found.append(_writes(contract.writes, contract.after_writes, subject.gradient))
    return found


def _writes(written: tuple[str, ...], after: str, backward: str) -> Diagnosis:
    """A warning: the backward writes into its dout or cache (what it breaks, and what to do)."""
    what = ", ".join(written)
    if after.startswith("raises"):
        effect = (f"called again on the same cache it {after}: it consumes the cache (`cache.pop()`?), so it can run "
                  "only once per forward. ")
    elif after:
        effect = (f"called again on them it {after} (does it return an array it also keeps, as in "
                  "`dx = cache; dx *= dout`? return a new array: `dx = dout * cache`). ")
    else:
        effect = "its answer does not change, but whoever else holds that array sees it changed. "
    return Diagnosis(MUTATES_INPUT, (
        f"{backward} writes into {what}: {effect}The check gave each call a copy of its own, so the gradients "
        "above are checked as returned; work on copies (`dout = dout.copy()`) to make it safe to call twice."),
        warning=True)


def layer_patterns(ev: Evidence, failing: list[Block]) -> dict[str, Diagnosis]:
    """Failing blocks explained by a pattern of layer code: block name -> diagnosis."""
    found: dict[str, Diagnosis] = {}
    for block in failing:
        if not np.isfinite(ev.analytic[block.slice]).all():  # NaN or inf from the backward: it says where, no rule
            continue
        for rule in (_transposed_jacobian, _wrong_axis, _recurrence, _permuted_pairs, _through_some_outputs,
                     _only_part_of_jacobian, _missing_path):
            diagnosis = rule(ev, block)
            if diagnosis is not None:
                found[block.name] = diagnosis
                break
    recurrence = next((d for d in found.values() if d.code == RECURRENCE), None)
    if recurrence is not None:  # what flows back through time is wrong for every argument, for one reason
        return {block.name: recurrence for block in failing}
    return found


def _permuted_pairs(ev: Evidence, block: Block) -> Diagnosis | None:
    """Each output's pairs with the right values in the wrong places (a flipped kernel, gates in another order)."""
    pairs = ev.pairs
    if pairs is None:
        return None
    a, n = pairs.analytic[:, block.slice], pairs.numeric[:, block.slice]
    miss = float(np.linalg.norm(a - n))
    if miss == 0 or not np.isfinite(n).all() or int(pairs.wrong[:, block.slice].sum()) < 2:
        return None
    if np.linalg.norm(np.sort(a, axis=1) - np.sort(n, axis=1)) > EXPLAINED * miss:
        return None
    own_a, own_n = ev.analytic[block.slice], ev.numeric[block.slice]
    if np.linalg.norm(np.sort(own_a) - np.sort(own_n)) <= EXPLAINED * np.linalg.norm(own_a - own_n):
        return None  # the gradient's own values are permuted: the block's patterns (a transpose) say how
    return Diagnosis(PERMUTATION, f"d{block.name}: each output reaches {block.name} with the right weights in the "
                     "wrong places (a permutation of each row of the Jacobian): a kernel flipped or not, gates or "
                     "channels in another order.", block.name)


def _wrong_axis(ev: Evidence, block: Block) -> Diagnosis | None:
    """A bias gradient that keeps another axis of dout than the one its broadcast runs along."""
    v, outputs = ev.subject.cotangent, ev.subject.outputs
    if v is None or outputs is None or len(outputs.blocks) != 1 or len(block.shape) != 1:
        return None
    shape = outputs.blocks[0].shape
    dout = v.reshape(shape)
    a, n = ev.analytic[block.slice], ev.numeric[block.slice]
    miss = float(np.linalg.norm(a - n))

    def kept(axis: int) -> np.ndarray:
        return np.moveaxis(dout, axis, 0).reshape(shape[axis], -1).sum(axis=1)

    candidates = [k for k, size in enumerate(shape) if size == block.size]
    matches_a = [k for k in candidates if np.linalg.norm(kept(k) - a) <= EXPLAINED * miss]
    matches_n = [k for k in candidates if np.linalg.norm(kept(k) - n) <= EXPLAINED * miss]
    if not (matches_a and matches_n) or set(matches_a) & set(matches_n):
        return None
    wrong_axes = tuple(k for k in range(len(shape)) if k != matches_a[0])
    right_axes = tuple(k for k in range(len(shape)) if k != matches_n[0])
    said = [ax[0] if len(ax) == 1 else ax for ax in (wrong_axes, right_axes)]
    return Diagnosis(BROADCAST, f"d{block.name} is dout summed over axis {said[0]}; the sum over axis {said[1]} is "
                     f"right (`dout.sum(axis={said[1]})`: {block.name} is broadcast along that axis in "
                     f"{ev.subject.cost}).", block.name)


def _only_part_of_jacobian(ev: Evidence, block: Block) -> Diagnosis | None:
    """An analytic Jacobian that is the numeric one restricted to its diagonal (or another part)."""
    pairs = ev.pairs
    if pairs is None:
        return None
    a, n = pairs.analytic[:, block.slice], pairs.numeric[:, block.slice]
    if not np.isfinite(n).all():
        return None
    support = a != 0
    if not support.any():  # nothing applied at all: the general explainer says the gradient is zero
        return None
    outside = float(np.linalg.norm(n[~support]))
    miss = float(np.linalg.norm(a - n))
    if miss == 0 or outside < OFF_SUPPORT * float(np.linalg.norm(n)):
        return None
    if float(np.linalg.norm((a - n)[support])) > EXPLAINED * miss:
        return None
    diagonal = a.shape[0] == a.shape[1] and not (support & ~np.eye(a.shape[0], dtype=bool)).any()
    part = ("its diagonal only: each output through its own input, as if the outputs did not depend on the "
            "other inputs (a softmax or a normalization couples them)" if diagonal else
            f"{int(support.sum())} of its {support.size} pairs; the others are missing")
    return Diagnosis(MISSING_TERM, f"d{block.name}: the Jacobian {ev.subject.gradient} applies is the right one "
                     f"restricted to {part}.", block.name)


def _missing_path(ev: Evidence, block: Block) -> Diagnosis | None:
    """An error that is a normalization's mean or variance path, or dout itself (a skip path)."""
    if len(block.shape) < 2 or not np.isfinite(ev.numeric[block.slice]).all():
        return None
    error = (ev.analytic[block.slice] - ev.numeric[block.slice]).reshape(block.shape)
    size = float(np.linalg.norm(error))
    if size == 0:
        return None
    v, outputs = ev.subject.cotangent, ev.subject.outputs
    if v is not None and outputs is not None and len(outputs.blocks) == 1 and outputs.blocks[0].shape == block.shape:
        dout = v.reshape(block.shape)
        c = float(np.vdot(error, dout) / np.vdot(dout, dout))
        if np.linalg.norm(error - c * dout) <= EXPLAINED * size:
            return Diagnosis(MISSING_TERM, f"d{block.name} misses {_times(-c)}dout itself: a path that passes dout "
                             "through unchanged (a residual's skip connection, an identity term) is missing or "
                             "counted twice.", block.name)
    x = ev.point[block.slice].astype(np.float64).reshape(block.shape)
    for axes in _reductions(block.shape):
        mean_part, spread_part, rest = _affine_fit(error, x, axes)
        if rest > EXPLAINED * size:
            continue
        over = axes[0] if len(axes) == 1 else axes
        which = ("mean" if spread_part <= EXPLAINED * size else "variance" if mean_part <= EXPLAINED * size
                 else "mean and variance")
        return Diagnosis(MISSING_TERM, f"d{block.name}: the error is {'constant' if which == 'mean' else 'affine'} "
                         f"along axis {over} for each of the other entries: the path through the {which} over axis "
                         f"{over} (a normalization's statistics) is missing or wrong.", block.name)
    return None


def _reductions(shape: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Axes a normalization may reduce over: each long enough axis, then all axes but one."""
    for k, size in enumerate(shape):
        if size >= MIN_FIBRE:
            yield (k,)
    if len(shape) >= 3:
        for keep in range(len(shape)):
            axes = tuple(k for k in range(len(shape)) if k != keep)
            if int(np.prod([shape[k] for k in axes])) >= MIN_FIBRE:
                yield axes


def _affine_fit(error: np.ndarray, x: np.ndarray, axes: tuple[int, ...]) -> tuple[float, float, float]:
    """Fit ``error = alpha + beta * (x - mean x)`` along ``axes``, per entry of the rest: norms of the parts."""
    centred = x - x.mean(axis=axes, keepdims=True)
    alpha = error.mean(axis=axes, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = np.nan_to_num(((error - alpha) * centred).sum(axis=axes, keepdims=True)
                             / (centred ** 2).sum(axis=axes, keepdims=True))
    mean_part = alpha * np.ones_like(error)
    spread_part = beta * centred
    return (float(np.linalg.norm(mean_part)), float(np.linalg.norm(spread_part)),
            float(np.linalg.norm(error - mean_part - spread_part)))


def _recurrence(ev: Evidence, block: Block) -> Diagnosis | None:
    """A sequence input ``(N, T, ...)`` right at its last step and wrong at earlier ones."""
    if len(block.shape) < 3 or block.shape[1] < 2:
        return None
    wrong = (ev.status[block.slice] == Status.WRONG).reshape(block.shape)
    per_step = np.moveaxis(wrong, 1, 0).reshape(block.shape[1], -1).any(axis=1)
    if per_step[-1] or not per_step[:-1].any():
        return None
    steps = np.flatnonzero(per_step).tolist()
    listed = ", ".join(map(str, steps[:5])) + (", ..." if len(steps) > 5 else "")
    last = block.shape[1] - 1
    return Diagnosis(RECURRENCE, f"d{block.name} is right at the last step (axis 1, step {last}) and wrong at"
                     f" {counted(len(steps), 'earlier step')} ({listed}): the gradient flowing back from the "
                     "next step (dh_next) is dropped or added at the wrong step, or the loop runs forward in time.",
                     block.name)


def _through_some_outputs(ev: Evidence, block: Block) -> Diagnosis | None:
    """Wrong pairs that are exactly those through one slice of the output (``out[:, 3]``, every sample)."""
    pairs, outputs = ev.pairs, ev.subject.outputs
    if pairs is None or outputs is None or len(outputs.blocks) != 1:
        return None
    shape = outputs.blocks[0].shape
    rows = np.flatnonzero(pairs.wrong[:, block.slice].any(axis=1))
    if not rows.size or rows.size == pairs.wrong.shape[0] or len(shape) < 2:
        return None
    where = np.array(np.unravel_index(rows, shape)).T
    for axis, size in enumerate(shape):
        values = np.unique(where[:, axis])
        if values.size == 1 and rows.size == int(np.prod(shape)) // size:
            name = outputs.blocks[0].name
            index = ", ".join(str(values[0]) if k == axis else ":" for k in range(len(shape)))
            return Diagnosis(LOCALIZED, f"d{block.name}: the pairs through {name}[{index}] are wrong, and only "
                             f"those: {ev.subject.gradient} mishandles that part of dout (an index off by one, a "
                             "column dropped or counted twice?).", block.name)
    return None


def _transposed_jacobian(ev: Evidence, block: Block) -> Diagnosis | None:
    """A square analytic Jacobian that is the numeric one transposed."""
    pairs = ev.pairs
    if pairs is None or ev.subject.kind not in ("jacobian", "hessian", "jvp", "vjp") or len(ev.layout.blocks) != 1:
        return None
    a, n = pairs.analytic, pairs.numeric
    if a.shape[0] != a.shape[1] or not np.isfinite(n).all():
        return None
    miss = float(np.linalg.norm(a - n))
    if miss == 0 or np.linalg.norm(a.T - n) > EXPLAINED * miss:
        return None
    return Diagnosis(TRANSPOSE, f"{ev.subject.gradient} gives the Jacobian transposed: entry [i, j] must be "
                     f"d {ev.subject.cost}_i / d {block.name}_j (output first, input second).", block.name)


def _gradients(names: list[str]) -> str:
    return ", ".join("d" + name for name in names)


def _times(c: float) -> str:
    return "" if abs(c - 1) < 1e-3 else f"{c:.3g} x "
