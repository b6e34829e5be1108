"""Check the gradient-checking article's network, right and with a bug.

Run ``python -m gradwidget.demo``; ``--bug`` picks the bug (see
``gradwidget.examples.NETWORK_BUGS``).
"""

from __future__ import annotations

import argparse

from . import check
from .examples import ARTICLE_SHAPES, NETWORK_BUGS, article_network

NAMES = ["Theta1", "Theta2", "Theta3"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gradwidget.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--bug", default="regularized-bias", choices=[b for b in NETWORK_BUGS if b],
                        help="the backpropagation bug of the second check (default: %(default)s)")
    args = parser.parse_args(argv)
    for bug in (None, args.bug):
        J, grad, theta = article_network(bug)
        print(f"== The article's network (Theta1 10x11, Theta2 10x11, Theta3 1x11): {NETWORK_BUGS[bug]}")
        print(check(J, grad, theta, shapes=ARTICLE_SHAPES, names=NAMES, seed=0))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
