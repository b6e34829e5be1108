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

from ._causes import EXPLAINED
from ._evidence import Evidence
from ._jacobian_patterns import coupled_axes, error_structure, kept_part, not_its_rows, stride_slip
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
    Diagnosis,
    Status,
)

__all__ = ["contract_diagnoses", "layer_patterns"]

MIN_FIBRE = 4
"""Entries along an axis before an error that is affine along it says something (any 2 points are on a line)."""



def contract_diagnoses(ev: Evidence) -> list[Diagnosis]:
    """The backward's contract failures: not linear in dout, shapes, harmful writes."""
    contract, subject = ev.contract, ev.subject
    if contract is None:
        return []
    by_fault: dict[tuple[str, str], list[str]] = {}
    for name, fault in contract.faults.items():  # one fault may name two blocks (two roles exchanged)
        by_fault.setdefault(fault, []).append(name)
    found = [Diagnosis(code, message, names[0] if len(names) == 1 else None)
             for (code, message), names in by_fault.items()]
    seen = {name: miss for name, miss in contract.ignores_dout.items() if not _zero_to_rounding(ev, name)}
    constant = [name for name in seen if name in contract.constant_in_dout]
    nonlinear = {name: miss for name, miss in seen.items() if name not in constant}
    given = {"vjp": "the cotangent", "jvp": "the tangent"}.get(subject.kind, "dout")
    short = {"vjp": "v", "jvp": "u"}.get(subject.kind, "dout")
    said = (lambda names: "answer") if subject.kind == "jvp" else _gradients
    if constant:
        found.append(Diagnosis(IGNORES_DOUT, (
            f"{subject.gradient} returns the same {said(constant)} whatever {given} is: it returns the local "
            f"derivative alone, or uses ones in place of {given}. Multiply by {given} (the chain rule)."),
            constant[0] if len(constant) == 1 else None))
    if nonlinear:
        worst, g = max(nonlinear.values()), subject.gradient
        found.append(Diagnosis(IGNORES_DOUT, (
            f"{g}'s {said(list(nonlinear))} {'does' if len(nonlinear) == 1 or subject.kind == 'jvp' else 'do'} not "
            f"scale with {given}: {g}({short}1) + {g}({short}2) differs from {g}({short}1 + {short}2) by up to "
            f"{worst:.1e} of its size. It is linear in {given}: look for a term without it, `np.ones_like(...)`, or "
            f"{given} squared, clipped or normalized."), next(iter(nonlinear)) if len(nonlinear) == 1 else None))
    if contract.writes:
        found.append(_writes(contract.writes, contract.after_writes, subject.gradient))
    return found


def _zero_to_rounding(ev: Evidence, name: str) -> bool:
    """Whether a block's gradient is zero within the check's tolerance everywhere: its linearity is rounding's.

    A gradient that is 0 (an output that does not depend on the input, such as a correlation of two numbers)
    comes back from a float32 backward as rounding noise, which is not linear in dout.
    """
    block = next((b for b in ev.layout.blocks if b.name == name), None)
    if block is None:
        return False
    analytic, tolerance = ev.analytic[block.slice], ev.tolerance[block.slice]
    measured = np.isfinite(tolerance)
    with np.errstate(invalid="ignore"):
        return bool(measured.all() and np.all(np.abs(analytic) <= tolerance)
                    and np.all(ev.status[block.slice] != Status.WRONG))


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
        for rule in (not_its_rows, _transposed_jacobian, _wrong_axis, _recurrence, stride_slip, _permuted_pairs,
                     _through_some_outputs, kept_part, error_structure, _skip_path, _keepdims, _statistics):
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


def _skip_path(ev: Evidence, block: Block) -> Diagnosis | None:
    """An error that is dout itself: a path that passes dout through unchanged is missing or counted twice."""
    v, outputs = ev.subject.cotangent, ev.subject.outputs
    if v is None or outputs is None or len(outputs.blocks) != 1 or outputs.blocks[0].shape != block.shape:
        return None
    if not np.isfinite(ev.numeric[block.slice]).all():
        return None
    error = (ev.analytic[block.slice] - ev.numeric[block.slice]).reshape(block.shape)
    dout = v.reshape(block.shape)
    c = float(np.vdot(error, dout) / np.vdot(dout, dout))
    if not error.any() or np.linalg.norm(error - c * dout) > EXPLAINED * np.linalg.norm(error):
        return None
    return Diagnosis(MISSING_TERM, f"d{block.name} misses {_times(-c)}dout itself: a path that passes dout "
                     "through unchanged (a residual's skip connection, an identity term) is missing or "
                     "counted twice.", block.name)


def _keepdims(ev: Evidence, block: Block) -> Diagnosis | None:
    """A reduction of dout without keepdims=True: its result broadcast along the wrong axis of a square block.

    ``dout - dout.mean(axis=1)`` (instead of ``keepdims=True``) subtracts the
    row means along the columns: the error is ``c * (r[:, None] - r[None, :])``
    with ``r`` a sum of dout over one axis.
    """
    v, outputs = ev.subject.cotangent, ev.subject.outputs
    if v is None or outputs is None or len(outputs.blocks) != 1 or len(block.shape) != 2:
        return None
    if outputs.blocks[0].shape != block.shape or block.shape[0] != block.shape[1]:
        return None
    error = (ev.analytic[block.slice] - ev.numeric[block.slice]).reshape(block.shape)
    size = float(np.linalg.norm(error))
    dout = v.reshape(block.shape)
    for axis in (1, 0):
        r = dout.sum(axis=axis)
        pattern = r[:, None] - r[None, :] if axis == 1 else r[None, :] - r[:, None]
        c = float(np.vdot(error, pattern) / max(float(np.vdot(pattern, pattern)), np.finfo(float).tiny))
        if size and c and np.linalg.norm(error - c * pattern) <= EXPLAINED * size:
            given = {"vjp": "the cotangent", "jvp": "the tangent"}.get(ev.subject.kind, "dout")
            return Diagnosis(BROADCAST, f"d{block.name}: a reduction of {given} over axis {axis} is broadcast along "
                             f"the wrong axis (the error is {c:.3g} x the sums over axis {axis}, spread across the "
                             f"other): reduce with keepdims=True (`.sum(axis={axis}, keepdims=True)`, or `.mean`).",
                             block.name)
    return None


def _statistics(ev: Evidence, block: Block) -> Diagnosis | None:
    """A normalization's statistics: over another axis than the forward's, or their path (mean, variance) wrong.

    Where the whole Jacobian is there and the output has the input's shape,
    the axes along which it links entries are the axes a normalization
    reduces over: the numeric one's are the forward's, the analytic one's the
    backward's. Elsewhere, the error that is affine along some axes (a
    constant plus a multiple of x, per entry of the others) is the path
    through the statistics over them.
    """
    if len(block.shape) < 2 or not np.isfinite(ev.numeric[block.slice]).all():
        return None
    error = (ev.analytic[block.slice] - ev.numeric[block.slice]).reshape(block.shape)
    size = float(np.linalg.norm(error))
    x = ev.point[block.slice].astype(np.float64).reshape(block.shape)
    if size == 0 or np.linalg.norm(error - float(np.vdot(error, x) / max(np.vdot(x, x), np.finfo(float).tiny)) * x) \
            <= EXPLAINED * size:  # c times the argument itself, one c for all: a penalty, not a normalization's path
        return None
    forward, backward = _normalized_axes(ev, block)
    if forward and backward and forward != backward:
        return Diagnosis(MISSING_TERM, f"d{block.name}: {ev.subject.cost} normalizes over {_axes(forward)} (its output "
                         f"at one entry moves with {block.name} along {'it' if len(forward) == 1 else 'them'} only), "
                         f"{ev.subject.gradient} over {_axes(backward)}: take the backward's sums and means over "
                         f"{_axes(forward)}.", block.name)
    for axes in [forward] if forward else _reductions(block.shape):
        mean_part, spread_part, rest = _affine_fit(error, x, axes)
        if rest > EXPLAINED * size:
            continue
        which = ("mean" if spread_part <= EXPLAINED * size else "variance" if mean_part <= EXPLAINED * size
                 else "mean and variance")
        count = int(np.prod([block.shape[k] for k in axes]))
        return Diagnosis(MISSING_TERM, f"d{block.name}: the error is {'constant' if which == 'mean' else 'affine'} "
                         f"along {_axes(axes)} for each of the other entries: the path through the {which} over "
                         f"{_axes(axes)} (a normalization's statistics, {count} entries each) is missing or wrong "
                         "(check the count it divides by, and each of its terms).", block.name)
    return None


def _normalized_axes(ev: Evidence, block: Block) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The axes the numeric and the analytic Jacobians link entries along (empty where they cannot be read)."""
    pairs, outputs = ev.pairs, ev.subject.outputs
    if pairs is None or outputs is None or len(outputs.blocks) != 1 or outputs.blocks[0].shape != block.shape:
        return (), ()
    a, n = pairs.analytic[:, block.slice], pairs.numeric[:, block.slice]
    forward = coupled_axes(n, block.shape, block.shape, pairs.tolerance[:, block.slice])
    return (forward, coupled_axes(a, block.shape, block.shape)) if forward else ((), ())


def _axes(axes: tuple[int, ...]) -> str:
    return f"axis {axes[0]}" if len(axes) == 1 else f"axes {axes}"


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
