"""How small an error in one entry of a right gradient each checker catches.

For each problem (right gradients from the test corpus) and each of
``--points`` seeded random points near the case's own point, one random
entry of the gradient (among the entries with a gradient at least a tenth
of their block's root mean square, so that a relative error in it is an
error at all) is moved by ``delta * max(|g_i|, its block's RMS)``, the
scale on which gradwidget's verdict states its claim, for delta from 1e-1
down to 1e-9. A checker catches the error when its verdict is "failed"
(gradwidget's "inconclusive" is not a catch). Printed per checker:

- the smallest delta caught in at least 90% of the trials, and at every
  larger delta (claim-relative), with false alarms in brackets: the share of
  the unmutated gradients the checker fails;
- for gradwidget, the same delta as a share of the moved entry itself
  (entry-relative, the median over the points), and the share of the right
  gradients it called inconclusive.

Beside them, how often gradwidget passed a mutated gradient whose error is
larger than the resolution its verdict claims (2e-6 in float64, 6e-3 in
float32); a wrong pass by its own standard. The limit J's rounding allows:
J's noise over the step at the mutated entry, relative to that entry's
gradient (the median over the points), as gradwidget measured it. And, on
the right gradients, the largest gap between an entry's final estimate and
grad's value in units of its tolerance: how much room the tolerances leave.
A mixed-scale model gets one row per block, so that every block is covered.

Targets: 1e-6 in float64 and in float32 code that follows its dtype
(checked in float64), 1e-2 in float32 code that casts to float32 itself; no
false alarm; inconclusive on at most 10% of the right gradients.

Run: ``python benchmarks/sensitivity.py [--points 20]`` (needs
``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from anchors import ANCHORS, Counted
from corpus import Case, make
from tables import ok, print_table

import gradwidget as gw
from gradwidget._params import Layout, flatten

DELTAS = [10.0 ** -k for k in range(1, 10)]
CAUGHT = 0.9
CHECKERS = ["gradwidget", "scipy check_grad", "torch gradcheck", "article: 1e-4, <1e-7", "R article: 1e-8, rel"]

# label, corpus case, block (None: any), target delta
PROBLEMS: list[tuple[str, str, str | None, float]] = [
    ("mlp, float64", "mlp", None, 1e-6),
    ("article network", "network", None, 1e-6),
    ("attention", "attention", None, 1e-6),
    ("lstm", "lstm", None, 1e-6),
    ("linear regression", "linreg", None, 1e-6),
    ("logistic regression", "logistic", None, 1e-6),
    ("poisson regression", "poisson-glm", None, 1e-6),
    ("mixed scales: rate (~1e-6)", "decay-mixed-scales", "rate", 1e-6),
    ("mixed scales: amplitude (~1e4)", "decay-mixed-scales", "amplitude", 1e-6),
    ("mixed scales: offset (~1)", "decay-mixed-scales", "offset", 1e-6),
    ("mlp, float32 (follows its dtype)", "mlp-float32", None, 1e-6),
    ("attention, float32 (follows its dtype)", "attention-float32", None, 1e-6),
    ("mlp, float32 (casts itself)", "mlp-float32-casts", None, 1e-2),
    ("attention, float32 (casts itself)", "attention-float32-casts", None, 1e-2),
]
INCONCLUSIVE = 0.1  # of the right gradients, at most


def near(case: Case, seed: int) -> tuple[Case, Layout, np.ndarray]:
    """The case at a random point near its own: every entry moved by a relative 10%."""
    layout, flat = flatten(case.theta, case.options.get("shapes"), case.options.get("names"))
    rng = np.random.default_rng(seed)
    moved = (flat * (1 + 0.1 * rng.normal(size=flat.size))).astype(flat.dtype)
    return replace(case, theta=layout.unflatten(moved)), layout, moved


def mutated(case: Case, layout: Layout, position: int, delta: float) -> Case:
    """The case with entry ``position`` of its gradient moved by ``delta * max(|g_i|, its block's RMS)``."""
    def grad(theta: Any) -> Any:
        flat, _ = layout.flatten_like(case.grad(theta))  # type: ignore[misc]
        part = flat[layout.block_of(position).slice]
        flat[position] += delta * max(abs(flat[position]), float(np.sqrt(np.mean(part ** 2))))
        return layout.unflatten(flat.astype(np.asarray(flat).dtype))
    return replace(case, grad=grad)


def entry_to_mutate(case: Case, layout: Layout, block: str | None, seed: int) -> int:
    """A random entry whose gradient is at least a tenth of its block's root mean square."""
    g, _ = layout.flatten_like(case.grad(case.theta))  # type: ignore[misc]
    eligible = []
    for b in layout.blocks:
        if block is None or b.name == block:
            part = np.abs(g[b.slice])
            rms = float(np.sqrt(np.mean(part ** 2)))
            eligible.extend(b.slice.start + np.flatnonzero(part >= 0.1 * rms))
    return int(np.random.default_rng(seed).choice(eligible))


def judged(checker: str, case: Case) -> tuple[str, float]:
    """The checker's verdict, and the relative resolution it claims (0 for the anchors, which state none)."""
    if checker == "gradwidget":
        result = gw.check(case.J, case.grad, case.theta, **{"seed": 0, **case.options})  # repeatable runs
        return result.verdict, result.evidence.noise.claim
    counted = Counted(case)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return ("passed" if ANCHORS[checker](counted.cost, counted.grad, counted.x0) else "failed"), 0.0


def claimed_share(case: Case, layout: Layout, position: int) -> float:
    """|g_i| over max(|g_i|, its block's RMS): what a relative error in entry i is, on the scale a claim is made."""
    g, _ = layout.flatten_like(case.grad(case.theta))  # type: ignore[misc]
    part = g[layout.block_of(position).slice]
    return float(abs(g[position]) / max(abs(g[position]), np.sqrt(np.mean(part ** 2))))


def right_gradient_figures(case: Case, position: int) -> tuple[float, float]:
    """On the right gradient: J's rounding over gradwidget's step at ``position``, relative to the gradient
    there (the noise limit), and the largest gap between an estimate and grad in units of its tolerance (the
    room the tolerances leave)."""
    ev = gw.check(case.J, case.grad, case.theta, **{"seed": 0, **case.options}).evidence
    noise = max(ev.noise.measured, ev.noise.unit * abs(ev.noise.cost))
    measured = np.isfinite(ev.numeric)
    return (float(noise / (ev.steps[position] * abs(ev.analytic[position]))),
            float(np.max(ev.gap[measured] / ev.tolerance[measured])))


def smallest_caught(rates: list[float]) -> str:
    """The smallest delta caught at the rate, with every larger delta caught too."""
    smallest = None
    for delta, rate in zip(DELTAS, rates):
        if rate < CAUGHT:
            break
        smallest = delta
    return f"{smallest:.0e}" if smallest is not None else "> 1e-1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--only", default="", help="only the problems whose label contains this text")
    args = parser.parse_args()
    rows = []
    targets_met = claims_held = True
    for label, name, block, target in PROBLEMS:
        if args.only not in label:
            continue
        caught = {c: np.zeros(len(DELTAS)) for c in CHECKERS}
        alarms = dict.fromkeys(CHECKERS, 0)
        limits, shares, headroom, inconclusive = [], [], 0.0, 0
        beyond_claim = 0  # gradwidget passed a gradient whose error exceeds the resolution it claims
        for seed in range(args.points):
            case, layout, _ = near(make(name), seed)
            position = entry_to_mutate(case, layout, block, seed)
            limit, gap_ratio = right_gradient_figures(case, position)
            limits.append(limit)
            headroom = max(headroom, gap_ratio)
            shares.append(claimed_share(case, layout, position))
            for checker in CHECKERS:
                verdict = judged(checker, case)[0]
                alarms[checker] += verdict == "failed"
                inconclusive += checker == "gradwidget" and verdict == "inconclusive"
                for k, delta in enumerate(DELTAS):
                    verdict, claim = judged(checker, mutated(case, layout, position, delta))
                    caught[checker][k] += verdict == "failed"
                    beyond_claim += checker == "gradwidget" and verdict == "passed" and delta > claim
        cells = []
        for checker in CHECKERS:
            reach = smallest_caught(list(caught[checker] / args.points))
            cells.append(f"{reach} ({alarms[checker] / args.points:.0%})")
            if checker == "gradwidget":
                entry = "-" if reach == "> 1e-1" else f"{float(reach) / np.median(shares):.0e}"
                cells.append(entry)
                targets_met &= (reach != "> 1e-1" and float(reach) <= target and alarms[checker] == 0
                                and inconclusive <= INCONCLUSIVE * args.points)
        claims_held &= beyond_claim == 0
        rows.append((label, *cells, f"{inconclusive / args.points:.0%}", f"{beyond_claim}/{args.points * len(DELTAS)}",
                     f"{np.median(limits):.0e}", f"{headroom:.2f}", f"{target:.0e}"))
    print(f"One entry of a right gradient moved by delta x max(|g_i|, its block's RMS), {args.points} random points "
          f"per problem: the smallest delta caught in >= {CAUGHT:.0%} of trials (and at every larger delta), with the "
          "false-alarm rate on the right gradients in brackets; for gradwidget also that delta relative to the entry "
          "itself, and the share of right gradients it called inconclusive.\n")
    print_table(("problem", CHECKERS[0], "gradwidget, entry-relative", *CHECKERS[1:], "gradwidget inconclusive",
                 "gradwidget passed beyond its claim", "noise limit", "right: largest gap / tolerance", "target"), rows)
    print(f"\ngradwidget meets every target (no false alarm, inconclusive <= {INCONCLUSIVE:.0%}): {ok(targets_met)}")
    print(f"gradwidget never passed an error larger than the resolution it claims: {ok(claims_held)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
