"""gradwidget: gradient checking you can see.

Check a hand-written gradient against finite differences of its cost, find
out where it is wrong and why, and look at it in Jupyter::

    import gradwidget as gw
    result = gw.check(J, grad, theta)
    print(result)

Importing gradwidget loads numpy only; plotting and widgets load when used.
"""

from .check import GradientCheckError, assert_gradient, check
from .diagnose import Diagnosis
from .params import random_init
from .result import BlockReport, CheckResult

__all__ = [
    "BlockReport",
    "CheckResult",
    "Diagnosis",
    "GradientCheckError",
    "assert_gradient",
    "check",
    "random_init",
]

__version__ = "0.1.0"
