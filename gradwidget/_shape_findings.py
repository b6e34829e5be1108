"""What a gradient returned in another shape shows, tested against the gradient it is compared with.

A gradient with the right values in another shape is a warning; one with
extra broadcast axes is a broadcast not summed where the sum agrees; one
with another number of entries is named with both shapes, and with the fix
(a crop, a diagonal, an axis) only where that fix agrees with the other
gradient.
"""

from __future__ import annotations

import numpy as np

from ._causes import WORDING
from ._evidence import Evidence
from ._params import Block, ShapeMismatch
from ._verdict import BROADCAST, SHAPE, Diagnosis, Status

__all__ = ["shape_findings", "shape_says"]


def shape_findings(ev: Evidence) -> list[Diagnosis]:
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


def shape_says(ev: Evidence, block: Block) -> bool:
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
        value = float(m.values.reshape(-1)[0])
        if value == 0 or not m.returned:
            return f"it is a single number ({value:g}), not d{name} (a placeholder left?)"
        return f"it has one entry ({value:g}) where {name} has {block.size}: only part of d{name}, or its sum?"
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
