"""Peak memory of a directional check, in units of theta's bytes, beyond what J and grad use themselves.

For theta of 1M, 5M and 20M float64 entries (``J(x) = c . sin(x) + |x|^2 / 2``
with one entry of the gradient 10% wrong), each size in a fresh process:
tracemalloc (which sees numpy's arrays) measures the peak of one call of J
and one of grad, then the peak of ``check(J, grad, theta, directions=8)``.
The difference, over theta's bytes, is what the check itself holds: the
analytic gradient, the per-entry steps, estimates, tolerances and statuses
of the result, one moved theta at a time. Target <= 10, whatever the
number of directions.

Run: ``python benchmarks/memory.py [--sizes 1e6 5e6 2e7]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc

from tables import ok, print_table

TARGET = 10.0


def measure(size: int) -> dict[str, float]:
    """One size, in this process: peaks over theta's bytes, seconds, and whether the wrong entry was named."""
    import gradwidget as gw
    from gradwidget.examples import one_wrong_entry

    J, grad, theta = one_wrong_entry(size=size, wrong=size // 3, error=0.1)
    tracemalloc.start()
    J(theta)
    grad(theta)
    own = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    start = time.perf_counter()
    result = gw.check(J, grad, theta, directions=8, progress=False)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    named = f"theta[{size // 3}]" in " ".join(d.message for d in result.diagnoses)
    return {"own": own / theta.nbytes, "peak": peak / theta.nbytes, "seconds": seconds, "named": named,
            "calls": result.evaluations, "verdict": result.verdict}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e6, 5e6, 2e7])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a single size, in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    rows = []
    for size in map(int, args.sizes):
        out = subprocess.run([sys.executable, __file__, "--one", str(size)], capture_output=True, text=True,
                             check=True).stdout
        m = json.loads(out.splitlines()[-1])
        beyond = m["peak"] - m["own"]
        rows.append((f"{size:,}", f"{size * 8 / 2 ** 20:,.0f} MB", f"{m['own']:.1f}", f"{m['peak']:.1f}",
                     f"{beyond:.1f}", ok(beyond <= TARGET), str(m["calls"]), f"{m['seconds']:.1f}",
                     m["verdict"], "yes" if m["named"] else "NO"))
    print_table(("entries", "theta", "J and grad (x theta)", "check peak (x theta)", "beyond J (x theta)",
                 f"<= {TARGET:.0f}", "calls of J", "seconds", "verdict", "wrong entry named"), rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
