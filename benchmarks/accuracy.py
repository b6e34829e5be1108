"""gradwidget against other gradient checkers on the test corpus.

Every checker sees the same cases (tests/corpus.py): right gradients, which
must pass, and buggy ones, which must fail. The table counts bugs caught
(a failed verdict on a buggy case), false alarms (a failed verdict on a
right one), inconclusive verdicts (only gradwidget has that third value:
the right answer where a case's gradient cannot be resolved), right
explanations (the exact diagnosis codes a case calls for), calls of J and
seconds. An anchor that raises on a case (a gradient of another size)
counts as catching it. The anchors and the verdict rule each is given are
in ``benchmarks/anchors.py``.

Run: ``python benchmarks/accuracy.py`` (needs ``pip install -e .[bench]``).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from anchors import ANCHORS, Counted
from corpus import Case, all_cases, make
from tables import print_table, verdict_row

import gradwidget as gw


def run_gradwidget(case: Case) -> tuple[str, set[str], int]:
    result = gw.check(case.J, case.grad, case.theta, **case.options)
    return result.verdict, {d.code for d in result.diagnoses}, result.evaluations


def main() -> int:
    cases = all_cases()
    buggy = [c for c in cases if not c.correct]
    explained = [c for c in buggy if c.codes]
    rows = []
    misses: dict[str, list[str]] = {}

    def tally(name: str, outcomes: list[tuple[Case, str, set[str] | None, int, float]]) -> None:
        row, misses[name] = verdict_row(name, outcomes, gradwidget=name.startswith("gradwidget"))
        rows.append(row)

    outcomes = []
    for case in cases:
        start = time.perf_counter()
        verdict, codes, calls = run_gradwidget(case)
        outcomes.append((case, verdict, codes, calls, time.perf_counter() - start))
    tally("gradwidget (defaults)", outcomes)
    for name, run in ANCHORS.items():
        outcomes = []
        for case in cases:
            counted = Counted(make(case.name))  # fresh closures: stateful cases start over
            start = time.perf_counter()
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                try:
                    passed = run(counted.cost, counted.grad, counted.x0)
                except Exception:  # an anchor that raises on a case (a gradient of another size) catches it
                    passed = False
            outcomes.append((case, "passed" if passed else "failed", None, counted.calls,
                             time.perf_counter() - start))
        tally(name, outcomes)

    unresolvable = sum(c.verdict == "inconclusive" for c in cases)
    print(f"{len(cases)} cases: {len(buggy)} buggy ({len(explained)} with a diagnosis to give), "
          f"{len(cases) - len(buggy)} right ({unresolvable} of them beyond what any check can resolve: "
          "inconclusive is their right verdict)\n")
    print_table(("checker", "bugs caught", "false alarms", "inconclusive", "right explanations", "calls of J",
                 "seconds"), rows)
    print("\nVerdicts other than the case's own (passed, failed or inconclusive):")
    for name, names in misses.items():
        print(f"  {name}: {', '.join(names) if names else 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
