"""Explanations: from the checker's evidence to diagnoses a student understands.

Each diagnosis has a fixed ``code`` (tools match on it) and a message that
names the block and entries at fault and says what the pattern usually
means in code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ._evidence import Evidence, NotSubgradient, global_resolution
from ._noise import COARSE_UNIT, NoiseModel
from ._options import counted
from ._params import Block, Layout, ShapeMismatch
from ._verdict import (
    BROADCAST,
    DOMAIN,
    IGNORES_INPUT,
    INTERRUPTED,
    JUDGED,
    KINK,
    LOCALIZED,
    MISSING_TERM,
    MUTATES_INPUT,
    NOISE_FLOOR,
    NONDETERMINISTIC,
    NOT_SUBGRADIENT,
    PERMUTATION,
    PRECISION_LOSS,
    SCALE,
    SHAPE,
    SIGN,
    SWAPPED,
    SYMMETRIC_POINT,
    TRANSPOSE,
    Status,
    Verdict,
    among,
    block_verdict,
)

__all__ = ["Diagnosis", "diagnose"]

EXPLAINED = 0.05
"""A pattern (scale, transpose, permutation) explains a block's failure when it leaves less than this share of it."""

MAX_NAMED = 5
"""Entries named in a message before "and N more"."""


@dataclass(frozen=True)
class Wording:
    """How messages name the two gradients compared and the function at fault."""

    ours: str
    theirs: str
    function: str
    mean_hint: str  # a factor m or 1/m between the two, m the number of examples
    row_major: str  # who reads the values row-major


WORDING = {
    "numeric": Wording("the analytic gradient", "the numeric one", "grad",
                       "dividing by m = {m} (a mean) in one of J and grad but not the other?", "J reads them"),
    "reference": Wording("your gradient", "the reference's", "your gradient function",
                         "{} by m = {m} (a mean)?", "theta is unrolled"),
}
"""Evidence.against -> wording: a check compares grad with finite differences; grading, with a reference."""


@dataclass(frozen=True)
class Diagnosis:
    """One finding: a fixed ``code``, a message for people, and where.

    Attributes
    ----------
    code : str
        One of `gradwidget.CODES` (tools match on it).
    message : str
        What was found and what to do, naming blocks and entries.
    block : str or None
        The block it is about, if one.
    index : tuple of int or None
        The entry it is about, if one (its index in the block).
    warning : bool
        Reported for the user to act on, but not a failure of the check,
        even where its code usually fails it (a backward that writes into
        its cache but whose gradients are right; a gradient of the right
        values in another shape).
    """

    code: str
    message: str
    block: str | None = None
    index: tuple[int, ...] | None = None
    warning: bool = False

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


def diagnose(ev: Evidence) -> list[Diagnosis]:
    """The diagnoses that ``ev`` supports, most important first."""
    found: list[Diagnosis] = []
    with np.errstate(over="ignore", invalid="ignore"):  # grad's inf or 1e200 entries are findings, not warnings
        found += _setup_problems(ev)
        found += _shape_findings(ev)
        if ev.contract is not None:
            from ._layer_diagnoses import contract_diagnoses

            found += contract_diagnoses(ev)
        if not ev.nondeterministic:
            found += _directional_findings(ev) if ev.directional else _failure_patterns(ev)
            found += _kinks(ev)
        found += _warnings(ev)
    if ev.subject.kind == "gradient":
        return found
    return [replace(d, message=ev.subject.words(d.message)) for d in found]


# ---------------------------------------------------------------- set-up


def _setup_problems(ev: Evidence) -> list[Diagnosis]:
    found = []
    for who, positions in ev.mutated.items():
        if positions.size:
            block = ev.layout.block_of(int(positions[0]))
            found.append(Diagnosis(
                MUTATES_INPUT,
                f"{who} changed theta in place ({counted(positions.size, 'entry')}, first "
                f"{ev.layout.entry_name(int(positions[0]))}): it must not modify its argument. "
                "Look for `x -= ...`, `x[...] = ...` or `np.copyto` on theta or on a name bound to it "
                "(`t = theta; t[0] = 0` changes theta too: use `t = theta.copy()`).",
                block.name, block.index(int(positions[0]) - block.start)))
    if ev.nondeterministic:
        first, *later = ev.costs_at_point
        other = next(c for c in later if c != first)
        when = "and then" if other == later[0] else "at the start and, after the check's other calls,"
        found.append(Diagnosis(
            NONDETERMINISTIC,
            f"J returned {first:.10g} {when} {other:.10g} for the same theta: it is random or keeps state "
            "(unseeded dropout, sampling, shuffling, a counter?)"
            + (", or, called on a batch, the cost of one row depends on the other rows (a mean or a "
               "normalization over the batch axis?)" if ev.vectorized else "")
            + ". Finite differences of such a J mean nothing; fix the randomness inside J (e.g. a seeded "
            "generator made in J) while checking."))
    if ev.grad_keeps_state:
        found.append(Diagnosis(
            NONDETERMINISTIC,
            "grad returned different gradients for the same theta, called twice: it keeps state between "
            "calls (a buffer it adds into and never zeroes, a `+=` on an array kept outside grad?). Make it "
            "start from fresh zeros on every call."))
    if ev.promotion is not None and ev.promotion.wrong.size:
        wrong = ev.promotion.wrong
        block = ev.layout.block_of(int(wrong[0]))
        found.append(Diagnosis(
            PRECISION_LOSS,
            f"The gradient formula is right in float64, but grad's {ev.promotion.dtype} answer differs from its "
            f"float64 value by more than {ev.promotion.dtype} resolves ({ev.promotion.claim:.0e} of the entry) in "
            f"{_entries(ev.layout, wrong)}: the {ev.promotion.dtype} computation itself loses it (an overflow in "
            "exp or a square, a constant rounded, a sum that cancels?).", block.name,
            block.index(int(wrong[0]) - block.start)))
    if ev.ignores_input:
        names = ev.ignores_input
        every = len(names) == len(ev.layout.blocks)
        where = "" if every and len(names) == 1 else " for every block" if every else f" for {', '.join(names)}"
        found.append(Diagnosis(
            IGNORES_INPUT,
            f"grad agrees with J at theta but not at a second point nearby{where}: part of it does not follow "
            "its argument (does it read a global such as `theta` or `W2` from an earlier cell, or a stale "
            "buffer, instead of its parameter?).", names[0] if len(names) == 1 and not every else None))
    return found


# ---------------------------------------------------------------- shapes


def _shape_findings(ev: Evidence) -> list[Diagnosis]:
    """What each gradient returned in another shape shows, tested against the gradient it is compared with."""
    return [_shape_finding(ev, ev.layout.blocks[[b.name for b in ev.layout.blocks].index(name)], mismatch)
            for name, mismatch in ev.mismatched.items()]


def _shape_finding(ev: Evidence, block: Block, m: ShapeMismatch) -> Diagnosis:
    name, theirs = block.name, WORDING[ev.against].theirs
    said = f"grad returned shape {m.returned} for {name}, which has shape {m.expected}"
    right = not (ev.status[block.slice] == Status.WRONG).any()
    if m.reshaped:
        update = f"`{name} -= lr * d{name}` raises" if _broadcast_shape(m.expected, m.returned) != m.expected else \
            "code that compares or stacks shapes sees the difference"
        values = "its values, in that shape, agree" if right else "in that shape its values are compared below"
        keepdims = ", or a sum without keepdims=True" if 1 in m.returned else ""
        return Diagnosis(BROADCAST, f"{said}: {values}. Return it in {name}'s shape "
                         f"(`d{name}.reshape({name}.shape)`{keepdims}): in another shape, {update}.", name,
                         warning=True)
    if m.summed is not None:
        axes = m.summed[0] if len(m.summed) == 1 else m.summed
        if right:
            return Diagnosis(BROADCAST, f"{said}: {name} is broadcast along axis {axes} in J, and grad does not "
                             f"sum over it. Summed over axis {axes} it agrees with {theirs}: sum it "
                             f"(`.sum(axis={axes})` of what grad returns).", name)
        return Diagnosis(SHAPE, f"{said}, and summed over axis {axes} it does not agree with {theirs} either"
                         + _diagonal_hint(ev, block, m) + ".", name)
    return Diagnosis(SHAPE, f"{said}: {_size_hint(ev, block, m)}.", name)


def _shape_says(ev: Evidence, block: Block) -> bool:
    """Whether the block's gradient came back with another number of entries: its shape finding explains it."""
    mismatch = ev.mismatched.get(block.name)
    return mismatch is not None and not mismatch.reshaped


def _agrees(ev: Evidence, block: Block, candidate: np.ndarray) -> bool:
    """Whether ``candidate`` (in the block's shape) is within each entry's tolerance of the other gradient."""
    other, tolerance = ev.numeric[block.slice], ev.tolerance[block.slice]
    seen = np.isfinite(other) & np.isfinite(tolerance)
    with np.errstate(invalid="ignore"):
        return bool(seen.any() and np.all(np.abs(candidate.reshape(-1)[seen] - other[seen]) <= tolerance[seen]))


def _diagonal_hint(ev: Evidence, block: Block, m: ShapeMismatch) -> str:
    """A square gradient of a vector whose diagonal is right: a matrix product where a sum of products belongs."""
    values = m.values
    if len(m.expected) != 1 or values.shape != (m.expected[0],) * 2 or not _agrees(ev, block, np.diag(values)):
        return ""
    return (": its diagonal does. grad multiplies every pair of columns (a matrix product such as "
            "`dout.T @ x_hat`) where only matching columns belong: the sum of elementwise products, "
            "`(dout * x_hat).sum(axis=0)`")


def _size_hint(ev: Evidence, block: Block, m: ShapeMismatch) -> str:
    """What a gradient with another number of entries shows: a placeholder, padding not cropped, another axis."""
    name = block.name
    if m.values.size == 1:
        return f"it is a single number ({float(m.values.reshape(-1)[0]):g}), not d{name} (a placeholder left?)"
    extra = [r - e for r, e in zip(m.returned, m.expected)]
    measured = np.isfinite(ev.numeric[block.slice]).any()  # not with directions=: no entry measured alone
    if len(m.returned) == len(m.expected) and min(extra) >= 0 and any(extra):
        axes = [k for k, x in enumerate(extra) if x]
        listed = f"axis {axes[0]} has" if len(axes) == 1 else f"axes {' and '.join(map(str, axes))} have"
        counts = "/".join(str(extra[k]) for k in axes) if len({extra[k] for k in axes}) > 1 else str(extra[axes[0]])
        counts += " more entry" if counts == "1" else " more entries" + (" each" if len(axes) > 1 else "")
        if not measured:
            return f"{listed} {counts} than {name}'s (padding not cropped, or a bias row kept?)"
        for cut, why in _cuts(extra):
            if _agrees(ev, block, m.values[cut]):
                index = ", ".join(_slice_text(c) for c in cut)
                return f"{listed} {counts} than {name}'s, and `d{name}[{index}]` is right: {why}"
        return (f"{listed} {counts} than {name}'s (padding not cropped, or a bias row kept?), and no cut of it "
                f"agrees with {WORDING[ev.against].theirs}")
    outputs = ev.subject.outputs
    if len(m.returned) == 1 and outputs is not None and len(outputs.blocks) == 1:
        along = [k for k, size in enumerate(outputs.blocks[0].shape) if size == m.returned[0]]
        if along:
            return (f"it has one entry per index of axis {along[0]} of J's output ({m.returned[0]}), where {name} "
                    f"has {m.expected[0] if len(m.expected) == 1 else block.size}: a sum over another axis of dout?")
    return "the two have different numbers of entries, so the check cannot compare them"


def _cuts(extra: list[int]) -> list[tuple[tuple[slice, ...], str]]:
    """Ways to cut an array with ``extra`` more entries per axis to size, each with what it would mean."""
    cuts = []
    if all(x % 2 == 0 for x in extra):
        cuts.append((tuple(slice(x // 2 or None, -(x // 2) or None) for x in extra),
                     "the padding is not cropped (the padded input's gradient, cut back to the input's shape)"))
    cuts.append((tuple(slice(x or None, None) for x in extra), "the first entries along that axis do not belong "
                 "(a bias unit's row or column kept?)"))
    cuts.append((tuple(slice(None, -x or None) for x in extra), "the last entries along that axis do not belong"))
    return cuts


def _slice_text(cut: slice) -> str:
    return f"{'' if cut.start is None else cut.start}:{'' if cut.stop is None else cut.stop}"


def _broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


# ---------------------------------------------------------------- failures


def _failure_patterns(ev: Evidence) -> list[Diagnosis]:
    layout = ev.layout
    failing = [b for b in layout.blocks if block_verdict(ev, b) is Verdict.FAILED and not _shape_says(ev, b)]
    if not failing:
        return []
    explained: dict[str, Diagnosis] = _swapped(ev, failing)
    if ev.subject.kind != "gradient":
        from ._layer_diagnoses import layer_patterns

        explained.update({name: d for name, d in layer_patterns(ev, failing).items() if name not in explained})
    for block in failing:
        pattern = _block_pattern(ev, block) if block.name not in explained else None
        if pattern is not None:
            explained[block.name] = pattern
    found = _merged(list(dict.fromkeys(explained.values())), layout)
    rest = [b for b in failing if b.name not in explained and not _explained_elsewhere(ev, b)]
    if rest:
        localized = _localized(ev, rest, failing)
        if localized is not None:
            found.append(localized)
    return found


def _directional_findings(ev: Evidence) -> list[Diagnosis]:
    """A global factor seen along every direction, or the wrong entries the search named."""
    transposed = [_transposed(b, WORDING[ev.against]) for b in ev.layout.blocks if b.name in ev.transposed]
    found = ev.directional
    assert found is not None  # only called in directional mode
    if found.factor is not None:
        c = found.factor
        if abs(c + 1) < 1e-3:
            return [Diagnosis(SIGN, "along every random direction the analytic gradient is -1 x the "
                              "numeric one: it has the wrong sign (`y - h` where `h - y` was meant?)")]
        return [Diagnosis(SCALE, f"along every random direction the analytic gradient is {_factor(c)} x the "
                          f"numeric one{_scale_hint(c, WORDING[ev.against])}")]
    if not found.failed_blocks:
        return transposed + ([Diagnosis(KINK, (
            "Some random directions disagree with grad, but no smaller group of entries does, even probed again: "
            "entries moved together across a kink or a tie of J do that (or errors of opposite signs that cancel "
            "in every part). Check without directions= to judge each entry alone."))] if found.unexplained else [])
    wrong = np.array(sorted(found.wrong), dtype=np.intp)
    agreeing = [b.name for b in ev.layout.blocks if b.name not in found.failed_blocks]
    verb = "disagrees" if len(found.failed_blocks) == 1 else "disagree"
    text = f"{', '.join(found.failed_blocks)} {verb} along random directions"
    if wrong.size:
        more = " (the search stops there)" if wrong.size >= 5 else ""
        text += f"; wrong entries found: {_entries(ev.layout, wrong)}{more}"
    if agreeing:
        text += f"; {', '.join(agreeing)} agree"
    first = int(wrong[0]) if wrong.size else ev.layout.blocks[0].start
    block = ev.layout.block_of(first)
    return [*transposed, Diagnosis(LOCALIZED, text + ".", block.name,
                                   block.index(first - block.start) if wrong.size else None)]


def _swapped(ev: Evidence, failing: list[Block]) -> dict[str, Diagnosis]:
    """Pairs of same-shape blocks whose gradients came back in each other's place: block name -> diagnosis."""
    say, found = WORDING[ev.against], {}
    for k, b in enumerate(failing):
        for c in failing[k + 1:]:
            if b.shape != c.shape or b.name in found or c.name in found:
                continue
            ab, ac, nb, nc = (ev.analytic[b.slice], ev.analytic[c.slice], ev.numeric[b.slice], ev.numeric[c.slice])
            if (np.isfinite(nb).all() and np.isfinite(nc).all()
                    and np.linalg.norm(ab - nc) <= EXPLAINED * np.linalg.norm(ab - nb)
                    and np.linalg.norm(ac - nb) <= EXPLAINED * np.linalg.norm(ac - nc)):
                code = SWAPPED if ev.subject.kind == "layer" else PERMUTATION
                found[b.name] = found[c.name] = Diagnosis(
                    code, f"{b.name} and {c.name} are swapped: {say.function} returns {c.name}'s gradient "
                    f"as {b.name}'s and {b.name}'s as {c.name}'s (check the order of what it returns).")
    return found


def _block_pattern(ev: Evidence, block: Block) -> Diagnosis | None:
    """sign, scale, transpose or permutation, if one explains the block."""
    name, say = block.name, WORDING[ev.against]
    if name in ev.transposed:
        return _transposed(block, say)
    checked = np.isfinite(ev.numeric[block.slice]) & np.isfinite(ev.analytic[block.slice])
    a, n = ev.analytic[block.slice][checked], ev.numeric[block.slice][checked]
    miss = float(np.linalg.norm(a - n))
    if a.size <= 1 or miss == 0:  # one entry: a factor says nothing more than "wrong"
        return None
    if not a.any() and _mostly_wrong(ev, block):
        return _zero_gradient(ev, block)

    def explains(candidate: np.ndarray) -> bool:
        return float(np.linalg.norm(candidate - n)) <= EXPLAINED * miss

    nn = float(n @ n)
    factor = float(a @ n) / nn if nn > 0 else 0.0
    # analytic = c x numeric must hold with a small residual: where the numeric gradient is near 0 and the analytic
    # one unrelated to it, a/c is near 0 too, and would "explain" the block with any c
    proportional = factor != 0 and float(np.linalg.norm(a - factor * n)) <= EXPLAINED * float(np.linalg.norm(a))
    if proportional and _mostly_wrong(ev, block) and explains(a / factor):
        if abs(factor + 1) < 1e-3:
            return Diagnosis(SIGN, f"{name}: {say.ours} has the wrong sign (it is -1 x {say.theirs}): a "
                             "gradient ascent step, or `y - h` where `h - y` was meant?", name)
        return Diagnosis(SCALE, f"{name}: {say.ours} is {_factor(factor)} x {say.theirs}"
                         f"{_scale_hint(factor, say)}", name)
    if checked.all() and len(block.shape) == 2:
        full_a = ev.analytic[block.slice]
        full_n = ev.numeric[block.slice]
        rows, cols = block.shape
        if rows == cols and float(np.linalg.norm(full_a.reshape(rows, cols).T.ravel() - full_n)) <= EXPLAINED * miss:
            return Diagnosis(TRANSPOSE, f"{name}: {say.ours} is the transpose of {say.theirs}: swap the "
                             "operands of the outer product (e.g. `X.T @ delta` vs `delta.T @ X`).", name)
        column_major = full_a.reshape(block.shape[::-1]).T.ravel()
        if float(np.linalg.norm(column_major - full_n)) <= EXPLAINED * miss:
            return Diagnosis(PERMUTATION, f"{name}: {say.function} returns the values in column-major "
                             f"(Octave `Theta(:)`, `order='F'`) order, {say.row_major} row-major: unroll "
                             "with `.ravel()` (or reshape with the same order on both sides).", name)
    wrong = int(np.sum(ev.status[block.slice] == Status.WRONG))
    if wrong >= 2 and float(np.linalg.norm(np.sort(a) - np.sort(n))) <= EXPLAINED * miss:
        return Diagnosis(PERMUTATION, f"{name}: {say.ours} has the right values in the wrong places (a "
                         f"permutation): check how {say.function} unrolls or indexes this block.", name)
    return None


def _zero_gradient(ev: Evidence, block: Block) -> Diagnosis:
    """A block whose gradient is zero everywhere, while J changes with it (an unfinished gradient)."""
    name, say = block.name, WORDING[ev.against]
    if ev.against == "reference":
        return Diagnosis(MISSING_TERM, f"{name}: {say.ours} is zero everywhere, and {say.theirs} is not: it is "
                         "not computed (an unfinished `np.zeros_like`, or the term left out?).", name)
    what = f"{name}: {say.ours} is zero everywhere, while J changes" if ev.subject.kind == "gradient" else \
        f"d{name} is zero everywhere, while J's output moves"
    return Diagnosis(MISSING_TERM, f"{what} with {name}: grad does not compute it (an unfinished "
                     f"`np.zeros_like({name})`, or the term left out?).", name)


def _mostly_wrong(ev: Evidence, block: Block) -> bool:
    """Whether at least half the entries that carry weight in the block are wrong (as a factor would make them).

    A single entry far off (1e200 in grad) dominates every norm; the fit of
    a factor would then explain the block by that one entry alone.
    """
    n = ev.numeric[block.slice]
    wrong = ev.status[block.slice] == Status.WRONG
    size = np.abs(np.nan_to_num(n))
    weighty = size >= 0.1 * float(np.sqrt(np.mean(size ** 2)))
    return int(wrong.sum()) >= 2 and 2 * int(wrong[weighty].sum()) >= int(weighty.sum())


def _transposed(block: Block, say: Wording) -> Diagnosis:
    """The diagnosis of a block that the gradient function returned with its 2-D shape reversed."""
    rows, cols = block.shape
    return Diagnosis(TRANSPOSE, f"{block.name}: {say.function} returned shape ({cols}, {rows}), expected "
                     f"({rows}, {cols}): the transpose. Return its `.T` (or swap the "
                     "operands of the outer product).", block.name)


def _merged(found: list[Diagnosis], layout: Layout) -> list[Diagnosis]:
    """One diagnosis for several blocks that show the same pattern."""
    if len(found) < 2:
        return found
    merged: list[Diagnosis] = []
    by_message: dict[tuple[str, str], list[Diagnosis]] = {}
    for d in found:
        prefix = f"{d.block}: "
        by_message.setdefault((d.code, d.message.removeprefix(prefix)), []).append(d)
    for (code, message), group in by_message.items():
        if len(group) == 1:
            merged.append(group[0])
        else:
            names = ", ".join(d.block or "" for d in group)
            every = len(group) == len(layout.blocks)
            merged.append(Diagnosis(code, f"{'every block' if every else names}: {message}"))
    return merged


def _explained_elsewhere(ev: Evidence, block: Block) -> bool:
    """Whether a failing block has no wrong entry of its own, or its shape or a backward's contract says why."""
    if ev.contract is not None and block.name in ev.contract.ignores_dout:
        return True
    if _shape_says(ev, block):
        return True
    return not (ev.status[block.slice] == Status.WRONG).any() and block.name not in ev.transposed


def _localized(ev: Evidence, rest: list[Block], failing: list[Block]) -> Diagnosis | None:
    """Name the few wrong entries or blocks, if the rest of the gradient agrees."""
    layout, status = ev.layout, ev.status
    wrong = np.flatnonzero(status == Status.WRONG)
    checked = among(status, JUDGED)
    if wrong.size == checked.sum() and np.isfinite(ev.analytic[wrong]).all():
        return None  # wrong everywhere: no place to point at
    agreeing = [b.name for b in layout.blocks if b not in failing]
    column = _same_whole_column(ev, rest)
    if column is not None and len(rest) > 1:
        names = "every block" if len(rest) == len(layout.blocks) else ", ".join(b.name for b in rest)
        hint = " (the bias column?)" if column == 0 else ""
        parts = [f"column {column} of {names} is wrong, and only that column{hint}"]
    else:
        parts = []
        for block in rest:
            bad = np.flatnonzero(status[block.slice] == Status.WRONG)
            total = int(among(status[block.slice], JUDGED).sum())
            if total == 1:
                parts.append(f"{block.name}: its one entry is wrong")
            elif bad.size == total:
                parts.append(f"{block.name}: the whole block ({total} entries) is wrong")
            else:
                parts.append(f"{block.name}: {bad.size} of {total} entries wrong{_where_in_block(block, bad)}")
    if agreeing:
        tail = ("all other blocks agree" if len(agreeing) + len(rest) == len(layout.blocks)
                else f"{', '.join(agreeing)} agree")
        parts.append(tail)
    broken = wrong[~np.isfinite(ev.analytic[wrong])]
    if broken.size:
        values = ", ".join(dict.fromkeys(str(v) for v in ev.analytic[broken]))
        parts.insert(0, f"grad returned {values} at {_entries(layout, broken)}")
    worst = wrong[np.argmax(ev.significance[wrong])]
    block = layout.block_of(int(worst))
    return Diagnosis(LOCALIZED, "; ".join(parts) + ".", block.name,
                     block.index(int(worst) - block.start))


def _same_whole_column(ev: Evidence, blocks: list[Block]) -> int | None:
    """The column c when, in every one of ``blocks`` (2-D), exactly the whole column c is wrong."""
    columns = set()
    for block in blocks:
        if len(block.shape) != 2:
            return None
        bad = np.flatnonzero(ev.status[block.slice] == Status.WRONG)
        cols = np.unravel_index(bad, block.shape)[1]
        if bad.size != block.shape[0] or not np.all(cols == cols[0]):
            return None
        columns.add(int(cols[0]))
    return columns.pop() if len(columns) == 1 else None


def _where_in_block(block: Block, bad: np.ndarray) -> str:
    if len(block.shape) == 2:
        rows, cols = np.unravel_index(bad, block.shape)
        hint = " (the bias column?)" if cols[0] == 0 else ""
        if np.all(cols == cols[0]) and bad.size == block.shape[0]:
            return f": the whole column {cols[0]}{hint}"
        if np.all(cols == cols[0]) and bad.size > 1:
            return f", all in column {cols[0]}{hint}"
        if np.all(rows == rows[0]) and bad.size > 1:
            return f", all in row {rows[0]}"
    names = [block.entry_name(int(i)) for i in bad[:MAX_NAMED]]
    more = f" and {bad.size - MAX_NAMED} more" if bad.size > MAX_NAMED else ""
    return f" ({', '.join(names)}{more})"


# ---------------------------------------------------------------- warnings


def _distinct(left: float, right: float, form: str = "g", digits: int = 4) -> tuple[str, str]:
    """Two numbers in ``form`` with as few digits as show that they differ (at least ``digits``)."""
    for count in range(digits, 18):
        shown = f"{left:.{count}{form}}", f"{right:.{count}{form}}"
        if shown[0] != shown[1]:
            return shown
    return shown


def _kinks(ev: Evidence) -> list[Diagnosis]:
    found = []
    at = np.flatnonzero(ev.status == Status.KINK)
    jumps = np.intersect1d(at, ev.jumps)
    corners = np.setdiff1d(at, jumps)
    if corners.size:
        first = int(corners[0])
        left, right = ev.one_sided.get(first, (np.nan, np.nan))
        block = ev.layout.block_of(first)
        found.append(Diagnosis(
            KINK,
            f"J is not differentiable at theta in {_entries(ev.layout, corners)}: its slope from the "
            f"left ({_distinct(left, right)[0]}) and from the right ({_distinct(left, right)[1]}) differ, so no "
            "finite difference "
            "settles there (a ReLU, max or abs exactly at its corner?). "
            + ("Entry by entry, the analytic value lies between the two slopes; moved together, it does not "
               "(see not-subgradient)." if ev.not_subgradient else
               "Not a bug in grad: the analytic value lies between the two slopes."),
            block.name, block.index(first - block.start)))
    found += [_not_subgradient(ev, name, inconsistent) for name, inconsistent in ev.not_subgradient.items()]
    if jumps.size:
        first = int(jumps[0])
        block = ev.layout.block_of(first)
        found.append(Diagnosis(
            KINK,
            f"J is discontinuous at theta in {_entries(ev.layout, jumps)}: it jumps there (a rounding, a count "
            "or a comparison that changes at this value?), so it has no derivative; whatever grad returns "
            "there is a convention, not something a check can confirm.",
            block.name, block.index(first - block.start)))
    if ev.noise.stepped:
        found.append(Diagnosis(
            KINK, f"J moves only in jumps near theta (of about {ev.noise.stepped:.1e}) and is flat between them, as "
                  "a rounding, a count or a comparison is (round, floor, argmax): its gradient is zero there, as "
                  "grad says. (If J instead computes in a coarse precision such as float16, which hides its slope "
                  "the same way, compute it in float64 to check the slope.)"))
    if ev.kink_near.size:
        found.append(Diagnosis(
            KINK,
            f"J has a kink within one step of theta in {_entries(ev.layout, ev.kink_near)}: "
            "the first difference crossed it; a smaller step agrees with grad.",
        ))
    return found


def _not_subgradient(ev: Evidence, name: str, found: NotSubgradient) -> Diagnosis:
    first = int(found.positions[0])
    block = ev.layout.block_of(first)
    smooth = bool(np.isclose(found.left, found.right, rtol=1e-3))
    left, right = _distinct(found.left, found.right)
    slopes = f"J's slope along that move is {left} from either side" if smooth else (
        f"J's slopes along that move are {left} from the left and {right} from the right")
    ratio = found.claimed / found.right if smooth and found.right else 1.0
    hint = (f" ({_factor(ratio)} x that slope: does the backward give the whole upstream gradient to every tied "
            "maximum, instead of to one of them or a share to each?)" if abs(ratio) > 1.5 else "")
    return Diagnosis(
        NOT_SUBGRADIENT,
        f"{_entries(ev.layout, found.positions)} sit at a kink or tie of J; moved together, grad's directional "
        f"derivative is {found.claimed:.4g}, and {slopes}: no subgradient of J gives that{hint}. At a kink grad may "
        "return any value between the one-sided slopes, but not one outside them.",
        name, block.index(first - block.start))


def _warnings(ev: Evidence) -> list[Diagnosis]:
    found = []
    if ev.directional is not None and ev.directional.reduced:
        found.append(Diagnosis(DOMAIN, "J returned NaN or inf one step away from theta along some random "
                               "directions (a domain edge such as log or sqrt of a number near 0): "
                               "those probes moved closer to theta."))
    if ev.step_reduced.size:
        skipped = np.flatnonzero(ev.status == Status.SKIPPED)
        reduced = np.setdiff1d(ev.step_reduced, skipped)
        text = f"J returned NaN or inf one step away from theta in {_entries(ev.layout, ev.step_reduced)} "
        text += "(a domain edge such as log or sqrt of a number near 0): "
        if reduced.size:
            text += f"the step was made smaller there (down to {ev.steps[reduced].min():.2g})"
        if skipped.size:
            text += ("; " if reduced.size else "") + (
                f"{counted(skipped.size, 'entry')} could not be checked and are NaN in numeric")
        found.append(Diagnosis(DOMAIN, text + ".", ev.layout.block_of(int(ev.step_reduced[0])).name))
    limits = _limits(ev)
    found += limits
    if ev.precision > COARSE_UNIT and not ev.nondeterministic and not any(d.code == NOISE_FLOOR for d in limits):
        low = ev.noise.coarse
        coarse_theta = np.finfo(ev.point.dtype).eps > COARSE_UNIT
        cause = (f"theta is {ev.point.dtype}: rounding in J" if low and coarse_theta else
                 "J returns its cost in single precision: rounding" if ev.noise.unit > COARSE_UNIT else
                 f"{_computed_in(ev.noise)}, and rounding" if ev.noise.computed_in else
                 f"J's value is noisy at about {ev.precision:.0e} relative (rounding in a large or "
                 "cancelling sum?), which")
        floor = ev.noise_floor
        seen = f"gradient errors above about {floor:.0e} relative" if np.isfinite(floor) else "small errors"
        found.append(Diagnosis(
            NOISE_FLOOR,
            f"{cause} limits what the check can see to {seen}; the verdict allows for it"
            + (" (check in float64 to see smaller errors)." if low else ".")))
    if ev.against == "numeric":  # a grader draws its own check points
        found += _symmetric_point(ev)
    return found


def _limits(ev: Evidence) -> list[Diagnosis]:
    """What stopped the check, or kept it from resolving what its verdict claims, and what to do."""
    found = []
    if ev.interrupted:
        judged = int(among(ev.status, JUDGED).sum())
        found.append(Diagnosis(INTERRUPTED, f"The check was {ev.interrupted}; {judged} of {ev.layout.size} entries "
                                            "were judged (the rest are NaN in numeric): run it again to judge "
                                            "them all (sample= or directions= check fewer)."))
    unresolved = np.flatnonzero(ev.status == Status.UNRESOLVED)
    if ev.tol is not None and ev.directional is None:
        resolution = global_resolution(ev.analytic, ev.numeric, ev.tolerance)
        if resolution >= ev.tol:
            size = f"about {resolution:.0e} of its size" if resolution < 1 else "larger than the gradient itself"
            checked = np.flatnonzero(np.isfinite(ev.numeric))
            found.append(Diagnosis(NOISE_FLOOR, f"The numeric gradient's own error is {size}, not below "
                                                f"tol = {ev.tol:g}: {_cause(ev, checked)}."))
    elif unresolved.size:
        worst = float(np.nanmax(ev.resolution[unresolved]))
        block = ev.layout.block_of(int(unresolved[0]))
        reached, claimed = _distinct(worst, ev.noise.claim, "e", 0)  # never "only to 6e-03, claims 6e-03"
        found.append(Diagnosis(
            NOISE_FLOOR, f"The check could resolve {_entries(ev.layout, unresolved)} "
                         + (f"only to about {reached} of the gradient's size" if worst < 1 else
                            "not at all (the numeric gradient's error there is as large as the gradient)")
                         + f", and its verdict claims {claimed}: {_cause(ev, unresolved)}.",
            block.name))
    elif ev.directional is not None and not ev.directional.directions.resolved.all():
        found.append(Diagnosis(NOISE_FLOOR, "Some random directions could not be resolved to what the verdict "
                                            f"claims ({ev.noise.claim:.0e}): {_cause(ev, unresolved)}."))
    return found


def _cause(ev: Evidence, entries: np.ndarray) -> str:
    """What most likely limited the resolution of ``entries``, and what to do about it."""
    noise = ev.noise
    if ev.eps is not None:
        return (f"with eps = {ev.eps:g}, rounding in J or the truncation of the difference swamps what the step "
                "can show; leave eps out (gradwidget picks a step per entry) or try a step nearer "
                f"{noise.unit ** (1 / 3):.0e} times theta's scale")
    if ev.method == "forward":
        return ("a forward difference resolves at best about the square root of J's rounding: use "
                "method='central' (the default)")
    if entries.size and np.all(np.abs(ev.analytic[entries]) <= ev.tolerance[entries]) and np.all(
            np.abs(ev.numeric[entries]) <= ev.tolerance[entries]):
        return ("the gradient is about 0 there, within the numeric error: errors in proportion to the gradient "
                "cannot show. At a minimum or another stationary point, check at a random point "
                "(gradwidget.random_init); where the gradient is simply small next to J (J is about "
                f"{abs(noise.cost):.1e}), subtract a constant from J (the gradient does not change) or check "
                "the terms of these entries on their own")
    if noise.computed_in:
        return f"{_computed_in(noise)}: compute J in float64, or check with a larger eps (e.g. eps=1e-2)"
    if noise.coarse:
        return (f"J's values are rounded at about {noise.unit:.0e} (float32): compute J in float64, or check "
                "with a larger eps (e.g. eps=1e-2)")
    if noise.measured > 10 * noise.unit * max(abs(noise.cost), np.finfo(float).tiny):
        return (f"J's value is noisy at about {noise.measured:.0e} (measured), far above the rounding of its "
                "type (large terms that cancel, such as a constant added and removed, sampling, or a changing "
                "order of summation): compute J without them, or check with a larger eps")
    return (f"J's rounding (J is about {abs(noise.cost):.1e}) is large next to the change these entries make in "
            "J: subtract a constant from J (the gradient does not change) or, if J is a sum of terms, check "
            "the terms of these entries on their own")


def _computed_in(noise: NoiseModel) -> str:
    """"J computes in about float32 precision: ..." from what J's measured noise shows."""
    return (f"J computes in about {noise.computed_in} precision although it returns a finer type: its values are "
            f"rounded at about {noise.precision:.0e} of J")


def _symmetric_point(ev: Evidence) -> list[Diagnosis]:
    found = []
    for block in ev.layout.blocks:
        values = ev.point[block.slice]
        if block.size < 2:
            continue
        if np.all(values == values[0]):
            what = "all zero" if values[0] == 0 else f"all equal to {values[0]:.4g}"
            found.append(Diagnosis(
                SYMMETRIC_POINT,
                f"theta's entries in {block.name} are {what} (a symmetric initialization): "
                "bugs that differ between units, or that vanish at 0 (such as a wrong "
                "regularization term), cannot show here; check at a random point "
                "(gradwidget.random_init).", block.name))
        elif len(block.shape) == 2 and block.shape[0] > 1:
            rows = values.reshape(block.shape[0], -1)
            if len({row.tobytes() for row in rows}) < block.shape[0]:
                found.append(Diagnosis(
                    SYMMETRIC_POINT,
                    f"theta has identical rows in {block.name} (a symmetric initialization): "
                    "bugs that differ between units cannot show here; use gradwidget.random_init.",
                    block.name))
    return found


# ---------------------------------------------------------------- wording


def _entries(layout: Layout, positions: np.ndarray) -> str:
    names = [layout.entry_name(int(i)) for i in positions[:MAX_NAMED]]
    more = f" and {positions.size - MAX_NAMED} more entries" if positions.size > MAX_NAMED else ""
    return ", ".join(names) + more


def _factor(c: float) -> str:
    digits = 3 if abs(c - 1) >= 0.01 else int(-np.floor(np.log10(abs(c - 1)))) + 2
    return f"{c:.{digits}g}" if abs(c) >= 1 or abs(c - 1) < 0.01 else f"{c:.3g}"


def _scale_hint(c: float, say: Wording) -> str:
    """What usually makes ``ours = c * theirs``: a factor 2 or a mean's m, on one side only."""
    for value, hint in ((2.0, "a missing 1/2 or a doubled term?"),
                        (0.5, "a lost factor 2 (the derivative of a square)?")):
        if abs(c - value) < 1e-3 * value:
            return f": {hint}"
    for m in (c, 1 / c):
        if m > 2.5 and abs(m - round(m)) < 1e-3 * m:
            side = "not dividing" if m == c else "dividing once more"
            return ": " + say.mean_hint.format(side, m=round(m))
    return "."

