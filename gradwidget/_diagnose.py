"""Explanations: from the checker's evidence to diagnoses a student understands.

Each diagnosis has a fixed ``code`` (tools match on it) and a message that
names the block and entries at fault and says what the pattern usually
means in code.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ._causes import EXPLAINED, WORDING, block_pattern, factor_text, penalties, scale_hint, transposed_block
from ._evidence import Evidence, NotSubgradient, global_resolution
from ._layer_diagnoses import contract_diagnoses, layer_patterns
from ._noise import COARSE_UNIT, NoiseModel
from ._options import counted
from ._params import Block, Layout
from ._shape_findings import shape_findings, shape_says
from ._verdict import (
    DOMAIN,
    IGNORES_INPUT,
    INTERRUPTED,
    JUDGED,
    KINK,
    LOCALIZED,
    MUTATES_INPUT,
    NOISE_FLOOR,
    NONDETERMINISTIC,
    NOT_SUBGRADIENT,
    PERMUTATION,
    PRECISION_LOSS,
    SCALE,
    SIGN,
    SWAPPED,
    SYMMETRIC_POINT,
    Diagnosis,
    Status,
    Verdict,
    among,
    block_verdict,
)

__all__ = ["diagnose"]

MAX_NAMED = 5
"""Entries named in a message before "and N more"."""




def diagnose(ev: Evidence) -> list[Diagnosis]:
    """The diagnoses that ``ev`` supports, most important first."""
    found: list[Diagnosis] = []
    with np.errstate(over="ignore", invalid="ignore"):  # grad's inf or 1e200 entries are findings, not warnings
        found += _setup_problems(ev)
        found += shape_findings(ev)
        if ev.contract is not None:
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
            "grad returned different gradients when called twice at theta: it keeps state between "
            "calls (a buffer it adds into and never zeroes, a `+=` on an array kept outside grad?). Make it "
            "start from fresh zeros on every call."))
    if ev.promotion is not None and ev.promotion.wrong.size:
        wrong = ev.promotion.wrong
        block = ev.layout.block_of(int(wrong[0]))
        held = ev.promotion.against or f"{ev.promotion.dtype} resolves ({ev.promotion.claim:.0e} of the entry)"
        found.append(Diagnosis(
            PRECISION_LOSS,
            f"The gradient formula is right in float64, but grad's {ev.promotion.dtype} answer differs from its "
            f"float64 value by more than {held} in "
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


# ---------------------------------------------------------------- failures


def _failure_patterns(ev: Evidence) -> list[Diagnosis]:
    layout = ev.layout
    faulted = ev.contract.faults if ev.contract is not None else {}
    failing = [b for b in layout.blocks if block_verdict(ev, b) is Verdict.FAILED and not shape_says(ev, b)
               and b.name not in faulted]  # a fault seen without finite differences says why
    if not failing:
        return []
    explained: dict[str, Diagnosis] = _swapped(ev, failing)
    explained.update({name: d for name, d in penalties(ev, failing).items() if name not in explained})
    if ev.subject.kind != "gradient":
        explained.update({name: d for name, d in layer_patterns(ev, failing).items() if name not in explained})
    for block in failing:
        pattern = block_pattern(ev, block) if block.name not in explained else None
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
    transposed = [transposed_block(b, WORDING[ev.against]) for b in ev.layout.blocks if b.name in ev.transposed]
    found = ev.directional
    assert found is not None  # only called in directional mode
    if found.factor is not None:
        c = found.factor
        if abs(c + 1) < 1e-3:
            return [Diagnosis(SIGN, "along every random direction the analytic gradient is -1 x the "
                              "numeric one: it has the wrong sign (`y - h` where `h - y` was meant?)")]
        return [Diagnosis(SCALE, f"along every random direction the analytic gradient is {factor_text(c)} x the "
                          f"numeric one{scale_hint(c, WORDING[ev.against])}")]
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
                code = PERMUTATION if ev.subject.kind == "gradient" else SWAPPED
                found[b.name] = found[c.name] = Diagnosis(
                    code, f"{b.name} and {c.name} are swapped: {say.function} returns {c.name}'s gradient "
                    f"as {b.name}'s and {b.name}'s as {c.name}'s (check the order of what it returns).")
    return found


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
    if shape_says(ev, block):
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
    hint = (f" ({factor_text(ratio)} x that slope: does the backward give the whole upstream gradient to every tied "
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
    flat = entries.size and np.all(ev.numeric[entries] == 0)
    if flat and noise.cost == 0:
        return ("J is exactly 0 around theta and does not move at all there, so grad's small values cannot show in "
                "it: J is saturated (a cross-entropy at confident logits, a sigmoid at large inputs). Check at a "
                "point where it is not (smaller weights: gradwidget.random_init)")
    if flat and np.all(np.abs(ev.analytic[entries]) <= noise.input_rounding(ev.point[entries], ev.analytic)):
        return ("J does not move at all there, and grad's values are within the rounding grad carries from "
                "theta's own size (about u * |theta_i| times the gradient's scale, as `x - logsumexp(x)` "
                "gives at large x): a derivative that is 0 computed as a difference of large terms. Check "
                "at a point where these entries are smaller (gradwidget.random_init) to resolve them")
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
                "type (large terms that cancel, such as a constant added and removed or a log-sum-exp at confident "
                "logits, sampling, or a changing order of summation): compute J without them, or check with a "
                "larger eps")
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

