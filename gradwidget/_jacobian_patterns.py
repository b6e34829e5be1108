"""What the whole Jacobian's pairs show about a backward: which pairs it keeps, and where its weights land.

Where outputs x inputs is small, a check of an array-valued function has the
whole Jacobian twice: numeric, from the forward, and analytic, one backward
call per output entry (`JacobianPairs`). A backward that drops pairs, or puts
them in the wrong place, leaves a structure that names the slip in the code:
a derivative kept on the diagonal only, a scatter that overwrites where
windows overlap, one filter that overwrites the others, a stride left out of
the scatter, statistics taken over another axis than the forward's.
"""

from __future__ import annotations

import numpy as np

from ._causes import EXPLAINED
from ._evidence import Evidence
from ._params import Block
from ._verdict import IGNORES_DOUT, LOCALIZED, MISSING_TERM, PERMUTATION, Diagnosis, Status

__all__ = ["COUPLED", "OFF_SUPPORT", "coupled_axes", "error_structure", "kept_part", "not_its_rows", "stride_slip"]

OFF_SUPPORT = 0.2
"""Share of the numeric Jacobian's norm outside the analytic one's nonzeros that makes "only part of it" a finding."""

FEW_PAIRS = 3
"""At most this many wrong pairs of a Jacobian are named one by one."""

COUPLED = 0.01
"""A Jacobian couples entries along an axis when its pairs that differ along it carry this share of its norm."""


def not_its_rows(ev: Evidence, block: Block) -> Diagnosis | None:
    """A backward whose answer for the whole dout is not the sum of its answers for each output entry alone.

    The rows come from one-hot douts, the gradient from the check's random
    one. A backward that writes ``dx[...] = ...`` only where an update is
    nonzero is right one output at a time and loses contributions at once.
    """
    pairs, v = ev.pairs, ev.subject.cotangent
    if pairs is None or v is None or (ev.contract is not None and block.name in ev.contract.ignores_dout):
        return None  # a backward the contract found not linear: it says so
    combined = v @ pairs.analytic[:, block.slice]
    analytic, tolerance = ev.analytic[block.slice], ev.tolerance[block.slice]
    with np.errstate(invalid="ignore"):
        apart = np.flatnonzero(np.abs(combined - analytic) > tolerance)
    if not apart.size or not (ev.status[block.slice][apart] == Status.WRONG).all():
        return None
    named = ", ".join(block.entry_name(int(k)) for k in apart[:3]) + (f" and {apart.size - 3} more" if apart.size > 3
                                                                       else "")
    return Diagnosis(IGNORES_DOUT, f"d{block.name} for the whole dout is not the sum of d{block.name} for each of its "
                     f"entries alone ({named} differ): {ev.subject.gradient} is not linear in dout. It is right one "
                     "output at a time and loses contributions at once where outputs share an input: an overwrite "
                     "(`dx[...] = ...` where `+=` was meant) that a dout with one nonzero entry hides?", block.name)


def error_structure(ev: Evidence, block: Block) -> Diagnosis | None:
    """A Jacobian's or a Hessian's error with a structure that names the missing term: a diagonal, an outer product.

    Only for an analytic Jacobian as a whole (``check_jacobian``,
    ``check_hessian``, ``check_jvp``, ``check_vjp``) of one input block. A
    Hessian whose own matrix is positive semidefinite where the true one is
    not is a Gauss-Newton ``J^T J`` in place of the full Hessian.
    """
    pairs = ev.pairs
    if pairs is None or ev.subject.kind == "layer" or len(ev.layout.blocks) != 1:
        return None
    a, n = pairs.analytic, pairs.numeric
    if not np.isfinite(n).all() or not np.isfinite(a).all() or not pairs.wrong.any():
        return None  # no pair beyond its tolerance: what differs is rounding
    error = a - n
    size = float(np.linalg.norm(error))
    if size == 0:
        return None
    what = "Hessian" if ev.subject.kind == "hessian" else "Jacobian"
    located = _pairs(error, pairs.wrong, what, ev.subject.gradient, block) or _rows_or_columns(
        error, what, ev.subject.gradient, block) or _off_diagonal(a, n, what, ev.subject.gradient, block)
    if located is not None:
        return located
    square = error.shape[0] == error.shape[1]
    if square and _spread_over(np.diag(error)) and np.linalg.norm(error - np.diag(np.diag(error))) <= EXPLAINED * size:
        return Diagnosis(MISSING_TERM, f"the {what} {ev.subject.gradient} gives is wrong on its diagonal only: a term "
                         "of f that acts on each entry by itself (an elementwise derivative such as 3 * u**2, or a "
                         "regularizer's lambda * I) is missing or wrong.", block.name)
    u, s, vt = np.linalg.svd(error)
    rank_one = np.linalg.norm(error - s[0] * np.outer(u[:, 0], vt[0])) <= EXPLAINED * size
    if rank_one and _spread_over(u[:, 0]) and _spread_over(vt[0]):  # one row, column or pair wrong is rank one too
        return Diagnosis(MISSING_TERM, f"the {what} {ev.subject.gradient} gives is off by an outer product u v^T (an "
                         "error of rank one): a term such as a softmax's -p p^T, a normalization's x x^T / |x|^3, or "
                         "the mean path of a centring is missing or wrong.", block.name)
    if what == "Hessian" and _semidefinite(a) and not _semidefinite(n):
        return Diagnosis(MISSING_TERM, f"{ev.subject.gradient} gives a positive semidefinite Hessian (as J^T J is) "
                         "where the true one has negative curvature: the second-order term of a least-squares "
                         "Hessian, the residuals times their own Hessians, is missing (Gauss-Newton in place of "
                         "Newton?).", block.name)
    return None


def _pairs(error: np.ndarray, wrong: np.ndarray, what: str, gradient: str, block: Block) -> Diagnosis | None:
    """A few pairs of the matrix wrong, none of them filling its row or its column: each named."""
    rows, columns = np.nonzero(wrong)
    whole_rows, whole_columns = np.asarray(wrong.all(axis=1)), np.asarray(wrong.all(axis=0))
    if not 0 < rows.size <= FEW_PAIRS or whole_rows[rows].any() or whole_columns[columns].any():
        return None
    if np.linalg.norm(np.where(wrong, 0.0, error)) > EXPLAINED * np.linalg.norm(error):
        return None
    many = rows.size > 1
    listed = ", ".join(f"[{i}, {j}]" for i, j in zip(rows, columns))
    derivatives = "; ".join(f"of f's output {i} with respect to {block.name}'s entry {j}"
                            for i, j in zip(rows, columns))
    return Diagnosis(LOCALIZED, f"{'entries' if many else 'entry'} {listed} of the {what} {gradient} gives "
                     f"{'are' if many else 'is'} wrong, and only {'they' if many else 'it'}, the rest of "
                     f"{'their rows and columns' if many else 'its row and column'} right: the "
                     f"derivative{'s' if many else ''} {derivatives}.", block.name)


def _rows_or_columns(error: np.ndarray, what: str, gradient: str, block: Block) -> Diagnosis | None:
    """A few whole rows (outputs) or columns (inputs) of the matrix wrong, and only those."""
    size = float(np.linalg.norm(error))
    for axis, word, of in ((1, "row", ("of f's output", "of f's outputs")),
                           (0, "column", (f"with respect to {block.name}'s entry", f"with respect to {block.name}'s "
                                                                                   "entries"))):
        weight = np.linalg.norm(error, axis=axis)
        wrong = np.flatnonzero(weight > EXPLAINED * size)
        rest = np.sqrt(max(size ** 2 - float(np.sum(weight[wrong] ** 2)), 0.0))
        if 0 < wrong.size <= weight.size // 2 and rest <= EXPLAINED * size:
            listed = ", ".join(map(str, wrong[:5])) + (" ..." if wrong.size > 5 else "")
            many = wrong.size > 1
            return Diagnosis(LOCALIZED, f"{word}{'s' if many else ''} {listed} of the {what} {gradient} gives "
                             f"{'are' if many else 'is'} wrong, and only {'they' if many else 'it'}: the "
                             f"derivative{'s' if many else ''} {of[many]} {listed}.", block.name)
    return None


def _off_diagonal(a: np.ndarray, n: np.ndarray, what: str, gradient: str, block: Block) -> Diagnosis | None:
    """A square matrix right on its diagonal and wrong off it: the terms that couple entries (a factor, if one)."""
    if a.shape[0] != a.shape[1] or a.shape[0] < 2:
        return None
    error = a - n
    size = float(np.linalg.norm(error))
    if np.linalg.norm(np.diag(error)) > EXPLAINED * size:
        return None
    off = ~np.eye(a.shape[0], dtype=bool)
    c = float(a[off] @ n[off]) / max(float(n[off] @ n[off]), np.finfo(float).tiny)
    factor = (" (the wrong sign)" if abs(c + 1) < 1e-3 else f" ({c:.3g} x the right ones)") \
        if c and np.linalg.norm(a[off] - c * n[off]) <= EXPLAINED * size else ""
    return Diagnosis(LOCALIZED, f"the {what} {gradient} gives is right on its diagonal and wrong off it{factor}: the "
                     "terms that couple entries (the cross derivatives) are wrong.", block.name)


def _spread_over(values: np.ndarray) -> bool:
    """Whether more than one entry carries weight (a tenth of the largest or more)."""
    size = np.abs(values)
    return int((size >= 0.1 * size.max()).sum()) >= 2 if size.max() > 0 else False


def _semidefinite(matrix: np.ndarray) -> bool:
    """Whether a square matrix's symmetric part has no eigenvalue below rounding's share of its largest."""
    values = np.linalg.eigvalsh((matrix + matrix.T) / 2)
    return bool(values.min() >= -1e-8 * max(float(np.abs(values).max()), np.finfo(float).tiny))


def kept_part(ev: Evidence, block: Block) -> Diagnosis | None:
    """An analytic Jacobian that keeps only part of the numeric one: its diagonal, one slice, one window per entry."""
    pairs = ev.pairs
    if pairs is None:
        return None
    a, n = pairs.analytic[:, block.slice], pairs.numeric[:, block.slice]
    if not np.isfinite(n).all():
        return None
    support, size = a != 0, float(np.linalg.norm(n))
    miss = float(np.linalg.norm(a - n))
    if not support.any() or miss == 0 or size == 0 or float(np.linalg.norm(n[~support])) < OFF_SUPPORT * size:
        return None
    right_where_kept = float(np.linalg.norm((a - n)[support])) <= EXPLAINED * miss
    square = a.shape[0] == a.shape[1]
    if square and not (support & ~np.eye(a.shape[0], dtype=bool)).any():
        layer = ev.subject.kind == "layer"
        what = "Hessian" if ev.subject.kind == "hessian" else "Jacobian"
        return Diagnosis(MISSING_TERM, f"{f'd{block.name}: ' if layer else ''}the {what} {ev.subject.gradient} "
                         f"{'applies' if layer else 'gives'} is the right one restricted to its diagonal only: each "
                         "output through its own input, as if the outputs did not depend on the other inputs ("
                         + ("a softmax or a normalization couples them)" if layer else "the terms that couple "
                            "entries are missing)")
                         + ("." if right_where_kept else _diagonal_too(np.diag(a), np.diag(n))), block.name)
    if not right_where_kept:
        return None
    reached = np.abs(n) > pairs.tolerance[:, block.slice]
    return (_one_slice(ev, block, support, reached) or _overwritten(ev, block, support, reached)
            or Diagnosis(MISSING_TERM, f"d{block.name}: the Jacobian {ev.subject.gradient} applies is the right one "
                         f"restricted to {int(support.sum())} of its {support.size} pairs; the others are missing.",
                         block.name))


def _diagonal_too(a: np.ndarray, n: np.ndarray) -> str:
    """The second error on the diagonal: a factor, when one explains it."""
    c = float(a @ n) / float(n @ n) if n.any() else 0.0
    if c and np.linalg.norm(a - c * n) <= EXPLAINED * np.linalg.norm(a - n):
        return f"; on the diagonal it is {c:.3g} x the right one as well (a second error)."
    return "; on the diagonal it differs as well (a second error)."


def _one_slice(ev: Evidence, block: Block, support: np.ndarray, reached: np.ndarray) -> Diagnosis | None:
    """Only the pairs through one slice of the output are kept (one filter overwriting the others)."""
    outputs = ev.subject.outputs
    if outputs is None or len(outputs.blocks) != 1 or len(outputs.blocks[0].shape) < 2:
        return None
    shape, name = outputs.blocks[0].shape, outputs.blocks[0].name
    kept = np.flatnonzero(support.any(axis=1))
    lost = np.flatnonzero(reached.any(axis=1) & ~support.any(axis=1))
    if not kept.size or not lost.size:
        return None
    where = np.array(np.unravel_index(kept, shape))
    for axis in range(1, len(shape)):
        values = np.unique(where[axis])
        if values.size == 1 and kept.size == int(np.prod(shape)) // shape[axis]:
            index = ", ".join(str(values[0]) if k == axis else ":" for k in range(len(shape)))
            return Diagnosis(MISSING_TERM, f"d{block.name}: only the pairs through {name}[{index}] reach "
                             f"d{block.name}, and those through the other {shape[axis] - 1} values of axis {axis} are "
                             f"missing: a loop over axis {axis} (the filters?) that assigns d{block.name} instead of "
                             "adding to it?", block.name)
    return None


def _overwritten(ev: Evidence, block: Block, support: np.ndarray, reached: np.ndarray) -> Diagnosis | None:
    """Every input entry keeps some of the outputs that reach it, not all: a scatter that overwrites."""
    keeps, reaches = (support & reached).sum(axis=0), reached.sum(axis=0)
    if not ((keeps >= 1) | (reaches == 0)).all() or not (keeps < reaches).any() or reaches.max() < 2:
        return None
    lost = int((reaches - keeps).sum())
    return Diagnosis(MISSING_TERM, f"d{block.name}: where several outputs reach one entry of {block.name}, only some "
                     f"of their pairs reach d{block.name} ({lost} of {int(reaches.sum())} pairs are missing, and every "
                     "entry keeps some): a scatter that overwrites where windows overlap (`dx[...] = ...` where `+=` "
                     "was meant)?", block.name)


def stride_slip(ev: Evidence, block: Block) -> Diagnosis | None:
    """Each output's window lands at ``k * i`` in the backward where the forward reads it at ``s * i``."""
    pairs, outputs = ev.pairs, ev.subject.outputs
    if pairs is None or outputs is None or len(outputs.blocks) != 1:
        return None
    out_shape = outputs.blocks[0].shape
    if len(out_shape) != len(block.shape) or len(out_shape) < 3:
        return None
    a, n = pairs.analytic[:, block.slice], pairs.numeric[:, block.slice]
    reached = np.abs(n) > pairs.tolerance[:, block.slice]
    starts_n, starts_a = _window_starts(reached, out_shape, block.shape), _window_starts(a != 0, out_shape,
                                                                                         block.shape)
    for axis in range(2, len(out_shape)):
        slope_n, slope_a = _slope(starts_n[axis]), _slope(starts_a[axis])
        if slope_n is not None and slope_a is not None and slope_n != slope_a:
            return Diagnosis(PERMUTATION, f"d{block.name}: each output's weights land on the wrong entries of "
                             f"{block.name}: along axis {axis}, the window of output index i starts at {slope_n} x i "
                             f"in the forward and at {slope_a} x i in {ev.subject.gradient}: the stride ({slope_n}) is "
                             "left out of the scatter (`dx[..., i:i + HH]` where `i * stride` was meant)?", block.name)
    return None


def _window_starts(nonzero: np.ndarray, out_shape: tuple[int, ...], in_shape: tuple[int, ...]
                   ) -> dict[int, list[tuple[int, int]]]:
    """Per spatial axis, (output index, first input index its pairs reach) for each output row with any pair."""
    starts: dict[int, list[tuple[int, int]]] = {axis: [] for axis in range(2, len(out_shape))}
    for row in np.flatnonzero(nonzero.any(axis=1)):
        out_index = np.unravel_index(row, out_shape)
        columns = np.array(np.unravel_index(np.flatnonzero(nonzero[row]), in_shape))
        for axis in starts:
            starts[axis].append((int(out_index[axis]), int(columns[axis].min())))
    return starts


def _slope(points: list[tuple[int, int]]) -> int | None:
    """The whole number s with ``start = s * index + c`` at every window away from the first edge, if any.

    Windows cut by the padding at the first edge all start at its first entry, and are left out.
    """
    if not points:
        return None
    index, start = np.array(points).T
    inner = start > start.min()
    index, start = index[inner], start[inner]
    if np.unique(index).size < 2:
        return None
    order = np.argsort(index)
    steps = np.diff(start[order]) / np.where(np.diff(index[order]) == 0, np.nan, np.diff(index[order]))
    steps = steps[np.isfinite(steps)]
    whole = round(float(np.median(steps))) if steps.size else 0
    fits = start - whole * index == start[0] - whole * index[0]
    return whole if whole >= 1 and bool(fits.all()) else None


def coupled_axes(matrix: np.ndarray, out_shape: tuple[int, ...], in_shape: tuple[int, ...],
                 tolerance: np.ndarray | None = None) -> tuple[int, ...]:
    """The axes along which a Jacobian (output x input, both of one shape) links entries that differ on that axis."""
    weight = np.abs(matrix) if tolerance is None else np.where(np.abs(matrix) > tolerance, np.abs(matrix), 0.0)
    total = float(weight.sum())
    if total == 0 or out_shape != in_shape:
        return ()
    rows = np.array(np.unravel_index(np.arange(matrix.shape[0]), out_shape))
    columns = np.array(np.unravel_index(np.arange(matrix.shape[1]), in_shape))
    return tuple(axis for axis in range(len(out_shape))
                 if float(weight[rows[axis][:, None] != columns[axis][None, :]].sum()) > COUPLED * total)

