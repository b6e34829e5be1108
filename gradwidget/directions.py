"""Directional checks: a few random directions, then find the wrong entries.

Along a direction v, the two-sided difference of J gives ``v . grad J`` in 2
calls, whatever n is. With random signs, every wrong entry moves every
direction's discrepancy, so k directions that all agree make a right
gradient likely at 2k calls. When one disagrees, the wrong entries are found
by group testing: probe each block with a direction supported on it, split
the failing groups in halves, and recurse. One wrong entry among n is named
in about 2 log2(n) probes.

A probe is judged by the checker (noise-aware, with smaller steps where it
disagrees); this module only chooses what to probe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .params import Layout

__all__ = ["DirectionalFindings", "Probes", "check_directions"]

MAX_FOUND = 5  # wrong entries to name before stopping the search
RATIO_AGREEMENT = 0.05  # directions whose A/D agree within this share of |A/D - 1| share one factor


@dataclass
class Probes:
    """Verdicts of a set of probes: analytic A = v . a, numeric D, tolerance, agreement."""

    analytic: np.ndarray
    numeric: np.ndarray
    tolerance: np.ndarray
    agree: np.ndarray


@dataclass
class DirectionalFindings:
    """What the random directions and the search found."""

    directions: Probes
    wrong: dict[int, tuple[float, float]] = field(default_factory=dict)  # entry -> (numeric, tolerance)
    failed_blocks: list[str] = field(default_factory=list)
    factor: float | None = None  # analytic = factor * numeric along every direction
    probes: int = 0


ProbeFn = Callable[[np.ndarray], Probes]


def check_directions(probe: ProbeFn, layout: Layout, steps: np.ndarray, count: int,
                     rng: np.random.Generator) -> DirectionalFindings:
    """Probe ``count`` random directions; localize the wrong entries if one disagrees.

    Parameters
    ----------
    probe : callable
        Judges the moves ``theta +- shifts[k]`` for each row of ``shifts``.
    layout : Layout
    steps : ndarray
        Per-entry steps: the size of a move along each coordinate.
    count : int
        Random directions.
    rng : Generator
    """
    shifts = rng.choice([-1.0, 1.0], (count, layout.size)) * steps
    found = DirectionalFindings(probe(shifts), probes=count)
    directions = found.directions
    if directions.agree.all():
        return found
    ratios = directions.analytic / np.where(directions.numeric != 0, directions.numeric, np.nan)
    if count >= 2 and not directions.agree.any():
        middle = np.median(ratios)
        if np.all(np.abs(ratios - middle) <= RATIO_AGREEMENT * abs(middle - 1)):
            found.factor = float(middle)
            found.failed_blocks = [b.name for b in layout.blocks]
            return found
    _localize(probe, layout, steps, rng, found)
    return found


def _localize(probe: ProbeFn, layout: Layout, steps: np.ndarray, rng: np.random.Generator,
              found: DirectionalFindings) -> None:
    groups = [np.arange(b.start, b.stop) for b in layout.blocks]
    verdicts = _probe_groups(probe, groups, steps, rng, found)
    searches = []  # one depth-first search per failing block
    for block, group, (ok, _) in zip(layout.blocks, groups, verdicts):
        if not ok:
            found.failed_blocks.append(block.name)
            searches.append([(group, (float("nan"), float("nan")))])
    # Name one entry in every failing block first, then more, up to MAX_FOUND.
    while any(searches) and len(found.wrong) < MAX_FOUND:
        for stack in searches:
            if stack and len(found.wrong) < MAX_FOUND:
                _descend(probe, stack, steps, rng, found)


def _descend(probe: ProbeFn, stack: list[tuple[np.ndarray, tuple[float, float]]], steps: np.ndarray,
             rng: np.random.Generator, found: DirectionalFindings) -> None:
    """Split failing groups depth-first until one wrong entry is named (or none is left)."""
    while stack:
        group, measured = stack.pop()
        if group.size == 1:
            found.wrong[int(group[0])] = measured
            return
        halves = [group[: group.size // 2], group[group.size // 2:]]
        for half, (ok, measured) in reversed(list(zip(halves, _probe_groups(probe, halves, steps, rng, found)))):
            if not ok:
                stack.append((half, measured))


def _probe_groups(probe: ProbeFn, groups: list[np.ndarray], steps: np.ndarray,
                  rng: np.random.Generator, found: DirectionalFindings) -> list[tuple[bool, tuple[float, float]]]:
    """Probe one random direction supported on each group.

    Returns, per group, whether it agrees and, for a single entry, its
    numeric derivative and that value's tolerance.
    """
    shifts = np.zeros((len(groups), steps.size))
    for row, group in zip(shifts, groups):
        row[group] = rng.choice([-1.0, 1.0], group.size) * steps[group]
    result = probe(shifts)
    found.probes += len(groups)
    out = []
    for row, group, ok, numeric, tolerance in zip(shifts, groups, result.agree, result.numeric, result.tolerance):
        step = row[group[0]] if group.size == 1 else np.nan
        out.append((bool(ok), (float(numeric / step), float(tolerance / abs(step)))))
    return out
