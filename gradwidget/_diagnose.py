"""Explanations: from the checker's evidence to diagnoses a student understands.

Each diagnosis has a fixed ``code`` (tools match on it) and a message that
names the block and entries at fault and says what the pattern usually
means in code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._evidence import Evidence
from ._params import Block, Layout
from ._verdict import (
    DOMAIN,
    IGNORES_INPUT,
    KINK,
    LOCALIZED,
    MUTATES_INPUT,
    NOISE_FLOOR,
    NONDETERMINISTIC,
    PERMUTATION,
    SCALE,
    SIGN,
    SYMMETRIC_POINT,
    TRANSPOSE,
    Status,
    Verdict,
    block_verdict,
)

__all__ = ["Diagnosis", "diagnose"]

EXPLAINED = 0.05
"""A pattern (scale, transpose, permutation) explains a block's failure when it leaves less than this share of it."""

MAX_NAMED = 5
"""Entries named in a message before "and N more"."""

JUDGED = (Status.OK, Status.WRONG, Status.KINK)


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
    """

    code: str
    message: str
    block: str | None = None
    index: tuple[int, ...] | None = None

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


def diagnose(ev: Evidence) -> list[Diagnosis]:
    """The diagnoses that ``ev`` supports, most important first."""
    found: list[Diagnosis] = []
    found += _setup_problems(ev)
    if not ev.nondeterministic:
        found += _directional_findings(ev) if ev.directional else _failure_patterns(ev)
        found += _kinks(ev)
    found += _warnings(ev)
    return found


# ---------------------------------------------------------------- set-up


def _setup_problems(ev: Evidence) -> list[Diagnosis]:
    found = []
    for who, positions in ev.mutated.items():
        if positions.size:
            block = ev.layout.block_of(int(positions[0]))
            found.append(Diagnosis(
                MUTATES_INPUT,
                f"{who} changed theta in place ({_count(positions.size, 'entry')}, first "
                f"{ev.layout.entry_name(int(positions[0]))}): it must not modify its argument. "
                "Look for `x -= ...`, `x[...] = ...` or `np.copyto` on theta or on a name bound to it "
                "(`t = theta; t[0] = 0` changes theta too: use `t = theta.copy()`).",
                block.name, block.index(int(positions[0]) - block.start)))
    if ev.nondeterministic:
        first, second = ev.costs_at_point
        found.append(Diagnosis(
            NONDETERMINISTIC,
            f"J returned {first:.10g} and then {second:.10g} for the same theta: it is random "
            "(unseeded dropout, sampling, shuffling?). Finite differences of a random J mean "
            "nothing; fix the randomness inside J (e.g. a seeded generator made in J) while checking."))
    if ev.ignores_input:
        found.append(Diagnosis(
            IGNORES_INPUT,
            "grad returned exactly the same gradient at another point, where J's slope is "
            "different: grad does not use its argument (does it read a global such as `theta` or "
            "`W` instead of its parameter?)."))
    return found


# ---------------------------------------------------------------- failures


def _failure_patterns(ev: Evidence) -> list[Diagnosis]:
    layout = ev.layout
    failing = [b for b in layout.blocks if block_verdict(ev, b) is Verdict.FAILED]
    if not failing:
        return []
    explained: dict[str, Diagnosis] = {}
    for block in failing:
        pattern = _block_pattern(ev, block)
        if pattern is not None:
            explained[block.name] = pattern
    found = _merged(list(explained.values()), layout)
    rest = [b for b in failing if b.name not in explained]
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
        return transposed
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


def _block_pattern(ev: Evidence, block: Block) -> Diagnosis | None:
    """sign, scale, transpose or permutation, if one explains the block."""
    name, say = block.name, WORDING[ev.against]
    if name in ev.transposed:
        return _transposed(block, say)
    checked = np.isfinite(ev.numeric[block.slice]) & np.isfinite(ev.analytic[block.slice])
    a, n = ev.analytic[block.slice][checked], ev.numeric[block.slice][checked]
    miss = float(np.linalg.norm(a - n))
    if a.size == 0 or miss == 0:
        return None

    def explains(candidate: np.ndarray) -> bool:
        return float(np.linalg.norm(candidate - n)) <= EXPLAINED * miss

    nn = float(n @ n)
    factor = float(a @ n) / nn if nn > 0 else 0.0
    if factor != 0 and explains(a / factor):
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
    if explains(_sorted_like(a, n)):
        return Diagnosis(PERMUTATION, f"{name}: {say.ours} has the right values in the wrong places (a "
                         f"permutation): check how {say.function} unrolls or indexes this block.", name)
    return None


def _transposed(block: Block, say: Wording) -> Diagnosis:
    """The diagnosis of a block that the gradient function returned with its 2-D shape reversed."""
    rows, cols = block.shape
    return Diagnosis(TRANSPOSE, f"{block.name}: {say.function} returned shape ({cols}, {rows}), expected "
                     f"({rows}, {cols}): the transpose. Return its `.T` (or swap the "
                     "operands of the outer product).", block.name)


def _sorted_like(a: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``a``'s values rearranged to follow ``n``'s order (best permutation)."""
    out = np.empty_like(a)
    out[np.argsort(n, kind="stable")] = np.sort(a, kind="stable")
    return out


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


def _localized(ev: Evidence, rest: list[Block], failing: list[Block]) -> Diagnosis | None:
    """Name the few wrong entries or blocks, if the rest of the gradient agrees."""
    layout, status = ev.layout, ev.status
    wrong = np.flatnonzero(status == Status.WRONG)
    checked = np.isin(status, JUDGED)
    if wrong.size == checked.sum():
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
            total = int(np.isin(status[block.slice], JUDGED).sum())
            where = _where_in_block(block, bad) if bad.size < total else ""
            parts.append(f"{block.name}: {bad.size} of {total} entries wrong{where}")
    if agreeing:
        tail = ("all other blocks agree" if len(agreeing) + len(rest) == len(layout.blocks)
                else f"{', '.join(agreeing)} agree")
        parts.append(tail)
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


def _kinks(ev: Evidence) -> list[Diagnosis]:
    found = []
    at = np.flatnonzero(ev.status == Status.KINK)
    if at.size:
        first = int(at[0])
        left, right = ev.one_sided.get(first, (np.nan, np.nan))
        block = ev.layout.block_of(first)
        found.append(Diagnosis(
            KINK,
            f"J is not differentiable at theta in {_entries(ev.layout, at)}: its slope from the "
            f"left ({left:.4g}) and from the right ({right:.4g}) differ, so no finite difference "
            "settles there (a ReLU, max or abs exactly at its corner?). Not a bug in grad: "
            "the analytic value lies between the two slopes.",
            block.name, block.index(first - block.start)))
    if ev.kink_near.size:
        found.append(Diagnosis(
            KINK,
            f"J has a kink within one step of theta in {_entries(ev.layout, ev.kink_near)}: "
            "the first difference crossed it; a smaller step agrees with grad.",
        ))
    return found


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
                f"{_count(skipped.size, 'entry')} could not be checked and are NaN in numeric")
        found.append(Diagnosis(DOMAIN, text + ".", ev.layout.block_of(int(ev.step_reduced[0])).name))
    if ev.precision > 1e-10 and not ev.nondeterministic:
        low = ev.unit > 1e-10
        coarse_theta = np.finfo(ev.point.dtype).eps > 1e-10
        cause = (f"theta is {ev.point.dtype}: rounding in J" if low and coarse_theta else
                 "J returns its cost in single precision: rounding" if low else
                 f"J's value is noisy at about {ev.precision:.0e} relative (rounding in a large or "
                 "cancelling sum?), which")
        floor = ev.noise_floor
        seen = f"gradient errors above about {floor:.0e} relative" if np.isfinite(floor) else "small errors"
        found.append(Diagnosis(
            NOISE_FLOOR,
            f"{cause} limits what the check can see to {seen}; the verdict allows for it"
            + (" (check in float64 to see smaller errors)." if low else ".")))
    found += _symmetric_point(ev)
    return found


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


def _count(number: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{number} {noun if number == 1 else plural}"


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

