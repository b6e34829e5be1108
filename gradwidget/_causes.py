"""What the numbers of a wrong block say about its cause: a factor, a sign, a transpose, a permutation, a zero.

A rule here reads one block's analytic and numeric gradients (or, when
grading, the student's and the reference's) and names a cause only where
the numbers fit it with a small residual (`EXPLAINED`); otherwise it says
nothing, and the block is reported as wrong at its entries. The words
(`WORDING`) depend on what the gradient is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._differences import point_scales
from ._evidence import Evidence
from ._noise import SATURATED_REACH
from ._params import Block
from ._verdict import MISSING_TERM, PERMUTATION, SCALE, SIGN, TRANSPOSE, Diagnosis, Status

__all__ = ["EXPLAINED", "WORDING", "Wording", "block_pattern", "factor_text", "mostly_wrong", "penalties",
           "transposed_block"]

EXPLAINED = 0.05
"""A pattern (scale, transpose, permutation) explains a block's failure when it leaves less than this share of it."""


MIN_PENALIZED = 3
"""Entries wrong by c times their parameter before a penalty is named (any one entry is c times itself, and a line
through the origin fits any two within its residual far more often than three)."""

PARAMETER_SPREAD = 0.3
"""The parameter's values must spread by this share of their RMS: a constant error would fit an about constant one."""

SLIGHTLY = 1e-3
"""An error of at most this share of each entry is a constant used differently, not a different formula."""

COHERENT = 0.6
"""The relative errors of a slightly different function share one sign on (1 + this) / 2 of the entries or more."""

MIN_COHERENT = 8
"""Wrong entries needed to tell one sign from chance (of 5 random signs, 4 agree one time in three)."""


@dataclass(frozen=True)
class Wording:
    """How messages name the two gradients compared and the function at fault."""

    ours: str
    theirs: str
    function: str
    mean_hint: str  # a factor m or 1/m between the two, m the number of examples
    row_major: str  # who reads the values row-major
    pair: str  # the two that differ


WORDING = {
    "numeric": Wording("the analytic gradient", "the numeric one", "grad",
                       "dividing by m = {m} (a mean) in one of J and grad but not the other?", "J reads them",
                       "J and grad"),
    "reference": Wording("your gradient", "the reference's", "your gradient function",
                         "{} by m = {m} (a mean)?", "theta is unrolled", "your gradient and the reference's"),
}
"""Evidence.against -> wording: a check compares grad with finite differences; grading, with a reference."""


def block_pattern(ev: Evidence, block: Block) -> Diagnosis | None:
    """The cause a failing block's numbers point to, if one explains them (see the module's docstring)."""
    if block.name in ev.transposed:
        return transposed_block(block, WORDING[ev.against])
    checked = np.isfinite(ev.numeric[block.slice]) & np.isfinite(ev.analytic[block.slice])
    wrong = WrongBlock(ev, block, checked)
    if wrong.a.size <= 1 or wrong.miss == 0:  # one entry: a factor says nothing more than "wrong"
        return None
    for rule in (_zero, _flat, _proportional, _transposed, _reshaped, _permuted, _slightly_different):
        found = rule(wrong)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class WrongBlock:
    """A failing block's two gradients over its checked entries, and how the messages word them."""

    ev: Evidence
    block: Block
    checked: np.ndarray

    @property
    def a(self) -> np.ndarray:
        return self.ev.analytic[self.block.slice][self.checked]

    @property
    def n(self) -> np.ndarray:
        return self.ev.numeric[self.block.slice][self.checked]

    @property
    def miss(self) -> float:
        return float(np.linalg.norm(self.a - self.n))

    @property
    def say(self) -> Wording:
        return WORDING[self.ev.against]

    @property
    def name(self) -> str:
        return self.block.name

    @property
    def wrong(self) -> np.ndarray:
        """Per checked entry, whether it was judged wrong."""
        return (self.ev.status[self.block.slice] == Status.WRONG)[self.checked]

    def explains(self, candidate: np.ndarray) -> bool:
        """Whether ``candidate`` leaves less than `EXPLAINED` of the analytic gradient's miss."""
        return float(np.linalg.norm(candidate - self.n)) <= EXPLAINED * self.miss


def _zero(w: WrongBlock) -> Diagnosis | None:
    return zero_gradient(w.ev, w.block) if not w.a.any() and mostly_wrong(w.ev, w.block) else None


def _flat(w: WrongBlock) -> Diagnosis | None:
    """J does not move at all along the block (every difference exactly 0) while grad says it does."""
    if w.n.any() or w.ev.against != "numeric" or w.wrong.sum() < 2:  # the entries where grad says 0 agree
        return None
    name = w.name
    if w.ev.subject.kind == "gradient":
        values = w.ev.point[w.block.slice]
        scale = point_scales(values, [slice(0, values.size)])[w.checked]
        reach = float(np.max(np.abs(w.a) * scale))  # J's change, as grad says, over each entry's scale
        saturated = (f" Or J is saturated here: by grad, {name} moving across its scale would change J by "
                     f"{reach:.0e} at most, which J's rounding may swallow whole (a softmax or sigmoid at inputs of "
                     "1e4): check at a random point (gradwidget.random_init)."
                     if reach <= SATURATED_REACH * max(abs(w.ev.noise.cost), 1.0) else "")
        return Diagnosis(MISSING_TERM, f"{name}: J does not change with {name} at all (every difference of J "
                         f"along it is exactly 0), while grad says it does: does J use {name}? (a term left out of "
                         f"J, or a step such as `x > 0` where a smooth function was meant?){saturated}", name)
    return Diagnosis(MISSING_TERM, f"J's output does not change with {name} at all (every difference is exactly "
                     f"0), while d{name} says it does: does J use {name}? (`x @ w` without `+ b`, or a step such "
                     "as `(x > 0)` returned where `x * (x > 0)` was meant?)", name)


def _proportional(w: WrongBlock) -> Diagnosis | None:
    """A sign, or a factor with its likely source: analytic = c x numeric, with a small residual."""
    a, n, say, name = w.a, w.n, w.say, w.name
    nn = float(n @ n)
    factor = float(a @ n) / nn if nn > 0 else 0.0
    # analytic = c x numeric must hold with a small residual: where the numeric gradient is near 0 and the analytic
    # one unrelated to it, a/c is near 0 too, and would "explain" the block with any c
    if factor == 0 or float(np.linalg.norm(a - factor * n)) > EXPLAINED * float(np.linalg.norm(a)):
        return None
    if not (mostly_wrong(w.ev, w.block) and w.explains(a / factor)):
        return None
    if abs(factor + 1) < 1e-3:
        return Diagnosis(SIGN, f"{name}: {say.ours} has the wrong sign (it is -1 x {say.theirs}): a "
                         "gradient ascent step, or `y - h` where `h - y` was meant?", name)
    return Diagnosis(SCALE, f"{name}: {say.ours} is {factor_text(factor)} x {say.theirs}"
                     f"{scale_hint(factor, say, w.ev, w.block)}", name)


def penalties(ev: Evidence, failing: list[Block]) -> dict[str, Diagnosis]:
    """Blocks whose error is c times the parameter itself on the entries found wrong: a penalty that differs.

    A block with at least `MIN_PENALIZED` such entries fixes c; a block with
    fewer (a bias row of one entry) is named too when its error is that same
    c times its parameter, as one penalty applied to them all.
    """
    if ev.subject.kind not in ("gradient", "layer"):  # a Jacobian's or a Hessian's input is a point, not a parameter
        return {}
    fits = {block.name: _penalty_fit(WrongBlock(ev, block, np.isfinite(ev.numeric[block.slice])
                                                & np.isfinite(ev.analytic[block.slice]))) for block in failing}
    factors = [fit[0] for fit in fits.values() if fit is not None and fit[2] >= MIN_PENALIZED]
    found = {}
    for block in failing:
        fit = fits[block.name]
        if fit is None or not any(abs(fit[0] - c) <= 1e-2 * abs(c) for c in factors):
            continue
        c, where, _ = fit
        say = WORDING[ev.against]
        found[block.name] = Diagnosis(MISSING_TERM, (
            f"{block.name}: {say.ours} minus {say.theirs} is {c:.3g} x the parameter itself{where}: a penalty "
            f"(regularization) on these entries differs between {pair(ev)}: missing from one, applied to other "
            "entries in one, or scaled differently (the gradient of `reg * np.sum(W ** 2)` is `2 * reg * W`)."),
            block.name)
    return found


def _penalty_fit(w: WrongBlock) -> tuple[float, str, int] | None:
    """c, where (in words) and how many entries, when the error on the wrong entries is c times the parameter."""
    wrong = w.wrong
    theta = w.ev.point[w.block.slice][w.checked].astype(np.float64)[wrong]
    error = (w.a - w.n)[wrong]
    # a parameter about constant over those entries makes any constant error look proportional to it
    if not theta.any() or (theta.size > 1 and float(np.std(theta)) < PARAMETER_SPREAD * float(
            np.sqrt(np.mean(theta ** 2)))):
        return None
    c = float(error @ theta) / float(theta @ theta)
    if c == 0 or float(np.linalg.norm(error - c * theta)) > EXPLAINED * float(np.linalg.norm(error)):
        return None
    n = w.n[wrong]
    k = float(n @ theta) / float(theta @ theta)
    if n.size > 1 and np.linalg.norm(n - k * theta) <= EXPLAINED * np.linalg.norm(n):
        return None  # the gradient itself is proportional to the parameter: a factor on it says as much (scale)
    where = "" if wrong.all() else f" on the entries found wrong{_place(w.block, w.checked, wrong)}"
    return c, where, int(wrong.sum())


def _place(block: Block, checked: np.ndarray, wrong: np.ndarray) -> str:
    """Where the wrong entries of a 2-D block are, when they are whole columns or rows."""
    if len(block.shape) != 2 or not checked.all():
        return ""
    rows, cols = np.unravel_index(np.flatnonzero(wrong), block.shape)
    for index, size, word in ((cols, block.shape[0], "column"), (rows, block.shape[1], "row")):
        kept = np.unique(index)
        if kept.size * size == wrong.sum():
            listed = ", ".join(map(str, kept[:5])) + (" ..." if kept.size > 5 else "")
            bias = ", the bias column?" if word == "column" and kept.tolist() == [0] else ""
            return f" ({word}{'s' if kept.size > 1 else ''} {listed}{bias})"
    excluded = np.setdiff1d(np.arange(block.shape[1]), np.unique(cols))
    if excluded.size == 1 and wrong.sum() == block.shape[0] * (block.shape[1] - 1):
        return f" (every column but {excluded[0]}{', the bias column?' if excluded[0] == 0 else ''})"
    return ""


def _transposed(w: WrongBlock) -> Diagnosis | None:
    if not (w.checked.all() and len(w.block.shape) == 2 and w.block.shape[0] == w.block.shape[1]):
        return None
    rows, cols = w.block.shape
    if not w.explains(w.ev.analytic[w.block.slice].reshape(rows, cols).T.ravel()):
        return None
    return Diagnosis(TRANSPOSE, f"{w.name}: {w.say.ours} is the transpose of {w.say.theirs}: swap the "
                     "operands of the outer product (e.g. `X.T @ delta` vs `delta.T @ X`).", w.name)


def _reshaped(w: WrongBlock) -> Diagnosis | None:
    """The right values transposed and then reshaped: column-major unrolling, or ``.reshape`` where ``.T`` belongs.

    For each way to see the block as a matrix (its first axes as rows, the
    rest as columns), the candidate reads grad's values as that matrix's
    transpose.
    """
    shape = w.block.shape
    if not w.checked.all() or len(shape) < 2:
        return None
    values = w.ev.analytic[w.block.slice]
    for split in range(1, len(shape)):
        rows, cols = int(np.prod(shape[:split])), int(np.prod(shape[split:]))
        if not w.explains(values.reshape(cols, rows).T.ravel()):
            continue
        if w.ev.subject.kind == "gradient" and len(shape) == 2:
            return Diagnosis(PERMUTATION, f"{w.name}: {w.say.function} returns the values in column-major "
                             f"(Octave `Theta(:)`, `order='F'`) order, {w.say.row_major} row-major: unroll "
                             "with `.ravel()` (or reshape with the same order on both sides).", w.name)
        return Diagnosis(PERMUTATION, f"d{w.name} is the right gradient as a {rows} x {cols} matrix, transposed "
                         f"({cols} x {rows}) and then reshaped to {w.name}'s shape {shape}: `.reshape` where a "
                         "transpose (`.T`) was meant first.", w.name)
    return None


def _permuted(w: WrongBlock) -> Diagnosis | None:
    if w.wrong.sum() < 2 or float(np.linalg.norm(np.sort(w.a) - np.sort(w.n))) > EXPLAINED * w.miss:
        return None
    return Diagnosis(PERMUTATION, f"{w.name}: {w.say.ours} has the right values in the wrong places (a "
                     f"permutation): check how {w.say.function} unrolls or indexes this block.", w.name)


def _slightly_different(w: WrongBlock) -> Diagnosis | None:
    """Every entry off by a small relative amount that no one factor explains: a constant differs (eps)."""
    if not mostly_wrong(w.ev, w.block):
        return None
    a, n = w.a[w.wrong], w.n[w.wrong]
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.abs(a - n) / np.maximum(np.abs(a), np.abs(n))
        signed = np.where(np.isfinite(relative), np.sign(a - n) * np.sign(n), 0.0)
    relative = relative[np.isfinite(relative)]
    if not relative.size or np.median(relative) > SLIGHTLY:
        return None
    # a slightly different function moves its entries coherently (each a little larger, or each smaller); errors
    # of random sign (a gradient jittered, summed in another order) are no constant's doing
    if signed.size < MIN_COHERENT or abs(float(np.mean(signed))) < COHERENT:
        return None
    low, middle, high = np.quantile(relative, [0.1, 0.5, 0.9])
    return Diagnosis(MISSING_TERM, (
        f"{w.name}: every entry is off by a small relative amount (about {middle:.0e} of it, {low:.0e} to "
        f"{high:.0e}), and no one factor explains it: grad is the exact derivative of a slightly different "
        "function. A constant is used differently in J and grad: eps inside `sqrt(var + eps)` in one and not the "
        "other, `sqrt(var) + eps` for `sqrt(var + eps)`, `var - eps`, or a constant rounded to float32."), w.name)


def zero_gradient(ev: Evidence, block: Block) -> Diagnosis:
    """A block whose gradient is zero everywhere, while J changes with it (an unfinished gradient)."""
    name, say = block.name, WORDING[ev.against]
    if ev.against == "reference":
        return Diagnosis(MISSING_TERM, f"{name}: {say.ours} is zero everywhere, and {say.theirs} is not: it is "
                         "not computed (an unfinished `np.zeros_like`, or the term left out?).", name)
    what = f"{name}: {say.ours} is zero everywhere, while J changes" if ev.subject.kind == "gradient" else \
        f"d{name} is zero everywhere, while J's output moves"
    return Diagnosis(MISSING_TERM, f"{what} with {name}: grad does not compute it (an unfinished "
                     f"`np.zeros_like({name})`, or the term left out?).", name)


def mostly_wrong(ev: Evidence, block: Block) -> bool:
    """Whether at least half the entries that carry weight in the block are wrong (as a factor would make them).

    A single entry far off (1e200 in grad) dominates every norm; the fit of
    a factor would then explain the block by that one entry alone.
    """
    n = ev.numeric[block.slice]
    wrong = ev.status[block.slice] == Status.WRONG
    size = np.abs(np.nan_to_num(n))
    weighty = size >= 0.1 * float(np.sqrt(np.mean(size ** 2)))
    return int(wrong.sum()) >= 2 and 2 * int(wrong[weighty].sum()) >= int(weighty.sum())


def transposed_block(block: Block, say: Wording) -> Diagnosis:
    """The diagnosis of a block that the gradient function returned with its 2-D shape reversed."""
    rows, cols = block.shape
    return Diagnosis(TRANSPOSE, f"{block.name}: {say.function} returned shape ({cols}, {rows}), expected "
                     f"({rows}, {cols}): the transpose. Return its `.T` (or swap the "
                     "operands of the outer product).", block.name)


def factor_text(c: float) -> str:
    digits = 3 if abs(c - 1) >= 0.01 else int(-np.floor(np.log10(abs(c - 1)))) + 2
    return f"{c:.{digits}g}" if abs(c) >= 1 or abs(c - 1) < 0.01 else f"{c:.3g}"


def scale_hint(c: float, say: Wording, ev: Evidence | None = None, block: Block | None = None) -> str:
    """The likely source of ``ours = c * theirs``, named only where c fits it (a 2, a log's base, a count).

    A square's 2, a term counted twice, a logarithm's base, a mean over a
    count the check can see. With ``block``, a factor 2 or 1/2 reads differently where J is linear
    along the block (no square there to lose a 2 from: a term counted
    twice) and where it is curved; an integer factor is taken for a mean
    only where it is the length of one of the output's axes, or, for a
    gradient, a number of examples the check cannot see.
    """
    name = block.name if block is not None else "it"
    linear = ev is not None and block is not None and block.name in ev.linear
    twice = {2.0: "grad counts a term twice, or J has a 1/2 grad does not (J = 0.5 * sum(r ** 2), and grad = "
                  "2 * ...)?" if not linear else "a term counted twice in grad?",
             0.5: f"grad gives half the slope J has along {name}: a factor 2 doubled in J or missing from grad "
                  f"({name} added twice, or a 1/p with p = 0.5 left out?)" if linear else
                  "a lost factor 2 (the derivative of a square)?"}
    for two, hint in twice.items():
        if abs(c - two) < 1e-3 * two:
            return f": {hint}"
    both = pair(ev) if ev is not None else say.pair
    loss = both == "the loss and its gradient"
    value, slope = ("the loss", "its gradient") if loss else ("J", "grad")
    for base, word in ((10.0, "log10"), (2.0, "log2")):
        for m, side in ((np.log(base), f"{value} takes {word} where {slope} differentiates the natural log"),
                        (1 / np.log(base), f"{slope} differentiates {word} where {value} takes the natural log")):
            if abs(c - m) < 1e-3 * m:
                return f": ln {base:g} = {np.log(base):.4g}: {side} (d {word}(u) = du / (u ln {base:g}))."
    for m in (c, 1 / c):
        if m > 2.5 and abs(m - round(m)) < 1e-3 * m:
            side = "not dividing" if m == c else "dividing once more"
            axis = _axis_of_length(round(m), ev)
            if ev is not None and ev.subject.kind != "gradient" and (axis or not loss):
                return f": {axis}: a mean over it in one of {both} but not the other?" if axis else "."
            if loss:  # a loss over examples the check cannot see: a mean, as for a cost
                return f": dividing by m = {round(m)} (a mean) in one of {both} but not the other?"
            return ": " + say.mean_hint.format(side, m=round(m))
    return "."


def pair(ev: Evidence) -> str:
    """The two functions that disagree, in words: J and grad, a loss and its gradient, or yours and the reference."""
    if ev.against == "numeric" and ev.subject.kind != "gradient" and ev.subject.cost == ev.subject.gradient:
        return "the loss and its gradient"
    return WORDING[ev.against].pair


def _axis_of_length(m: int, ev: Evidence | None) -> str:
    """The output's axis (or the first differentiated argument's) of length ``m``, in words; "" if none."""
    if ev is None:
        return ""
    outputs = ev.subject.outputs
    shapes = ([(f"{ev.subject.cost}'s output", outputs.blocks[0].shape)] if outputs is not None
              and len(outputs.blocks) == 1 else []) + [(block.name, block.shape) for block in ev.layout.blocks[:1]]
    for owner, shape in shapes:
        for axis, size in enumerate(shape):
            if size == m and len(shape) > 1:
                return f"{m} is the length of axis {axis} of {owner}"
    return ""
