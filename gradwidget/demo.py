"""Check the gradient-checking article's network, right and with a bug.

Run ``python -m gradwidget.demo``; ``--bug`` picks the bug (see
``gradwidget.examples.NETWORK_BUGS``). Each check prints its report and
saves its heatmaps and eps sweep as PNG files in ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import check
from .examples import ARTICLE_NAMES, ARTICLE_SHAPES, NETWORK_BUGS, article_network


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gradwidget.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--bug", default="regularized-bias", choices=[b for b in NETWORK_BUGS if b],
                        help="the backpropagation bug of the second check (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("gradwidget-demo"),
                        help="folder for the figures (default: %(default)s)")
    parser.add_argument("--no-figures", dest="figures", action="store_false", help="print the reports only")
    args = parser.parse_args(argv)
    for bug in (None, args.bug):
        J, grad, theta = article_network(bug)
        print(f"== The article's network (Theta1 10x11, Theta2 10x11, Theta3 1x11): {NETWORK_BUGS[bug]}")
        result = check(J, grad, theta, shapes=ARTICLE_SHAPES, names=ARTICLE_NAMES, seed=0)
        print(result)
        if args.figures:
            args.out.mkdir(parents=True, exist_ok=True)
            stem = args.out / (bug or "correct")
            for kind, figure in (("heatmaps", result.plot()), ("eps-sweep", result.plot_eps_sweep())):
                figure.savefig(f"{stem}-{kind}.png", dpi=100)
                print(f"saved {stem}-{kind}.png")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
