"""gradwidget: gradient checking you can see.

Check a hand-written gradient against finite differences of its cost, find
out where it is wrong and why, and look at it in Jupyter::

    import gradwidget as gw
    result = gw.check(J, grad, theta)
    print(result)

In IPython or Jupyter, ``%load_ext gradwidget`` adds the ``%gradcheck``
magic. Importing gradwidget loads numpy only; plotting, widgets and the
magic load when used.
"""

from typing import Any

from . import _verdict
from ._array_checks import check_hessian, check_jacobian, check_jvp, check_vjp
from ._check import GradientCheckError, assert_gradient, check
from ._layer import assert_layer, check_layer, check_loss
from ._options import InputError, OptionError
from ._params import random_init
from ._result import BlockReport, CheckResult
from ._verdict import *  # noqa: F403  (the diagnosis codes: CODES and one constant each)
from ._verdict import Diagnosis

__all__ = [
    "BlockReport",
    "CheckResult",
    "Diagnosis",
    "GradCheckPanel",  # noqa: F405  (loaded on first use, by __getattr__)
    "GradientCheckError",
    "InputError",
    "OptionError",
    "assert_gradient",
    "assert_layer",
    "check",
    "check_hessian",
    "check_jacobian",
    "check_jvp",
    "check_layer",
    "check_loss",
    "check_vjp",
    "random_init",
    *_verdict.__all__,
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "GradCheckPanel":  # loads ipywidgets, so only when asked for
        from .display._panel import GradCheckPanel

        return GradCheckPanel
    raise AttributeError(f"module 'gradwidget' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%gradcheck`` and ``%%gradcheck`` (run by ``%load_ext gradwidget``)."""
    from ._magic import load_ipython_extension as load

    load(ipython)
