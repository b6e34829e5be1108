"""How a block's verdict is worded, the same in the report's table, the heatmaps' titles and the panel."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .._result import CheckResult

__all__ = ["block_state"]


def block_state(result: CheckResult, index: int) -> str:
    """Block ``index``'s verdict as the report's table words it ("ok", "3 of 110 wrong", ...)."""
    b = result.blocks[index]
    directional = result.evidence.directional is not None
    mismatch = result.evidence.mismatched.get(b.name)
    if mismatch is not None and mismatch.unusable:
        return f"shape {mismatch.returned}: not compared"
    summed = f"shape {mismatch.returned}, summed: " if mismatch is not None and mismatch.summed else ""
    if summed and not b.wrong:
        state = "values ok"
    elif b.passed:
        state = "ok"
    elif b.verdict == "inconclusive":
        state = "inconclusive" + "".join(f", {count} {what}" for count, what in (
            (b.unresolved, "unresolved"), (b.skipped, "skipped"), (int(np.prod(b.shape)) - b.checked
                                                                   - b.skipped, "not checked")) if count)
        state = state if b.checked + b.skipped or directional else "inconclusive, nothing checked"
    elif directional:
        state = f"wrong ({b.wrong} named)" if b.wrong else "wrong"
    else:
        state = f"{b.wrong} of {b.checked} wrong" if b.wrong else "wrong"
    if b.kinks:
        state += f", {b.kinks} at a kink or jump"
    return summed + state
