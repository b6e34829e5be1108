"""The ``%gradcheck`` and ``%%gradcheck`` magics.

Load them with ``%load_ext gradwidget``. Defaults for every option can be
set with ``%config GradCheckMagics.<option> = value``.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import traceback
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Enum, Float, Int

from .check import check
from .differences import METHODS

__all__ = ["GradCheckMagics", "load_ipython_extension"]

PACKAGE_DIR = Path(__file__).resolve().parent


@magics_class
class GradCheckMagics(Magics):
    """``%gradcheck``: check a hand-written gradient from a notebook.

    The traits below are the defaults of the magic's options; set them with
    ``%config GradCheckMagics.method = "richardson"`` and the like.
    """

    method = Enum(list(METHODS), default_value="central", help="Finite-difference scheme.").tag(config=True)
    eps = Float(None, allow_none=True, help="Step, used as given (None: chosen per entry).").tag(config=True)
    tol = Float(None, allow_none=True, help="Use the rule error < tol (None: noise-aware verdict).").tag(config=True)
    sample = Int(None, allow_none=True, help="Entries checked per block (None: all).").tag(config=True)
    directions = Int(None, allow_none=True, help="Random directions instead of entries (None: entries).").tag(
        config=True)
    seed = Int(None, allow_none=True, help="Seed for the random parts of the check.").tag(config=True)
    progress = Bool(None, allow_none=True, help="Progress bar (None: only for long checks).").tag(config=True)

    @magic_arguments()
    @argument("targets", nargs="+", metavar="NAME",
              help="line: 'J grad theta', or 'cost_and_grad theta' when J returns (cost, grad); "
                   "cell: 'theta' (the cell defines J and grad). Names or expressions of the notebook.")
    @argument("-m", "--method", choices=list(METHODS), help="finite-difference scheme (default: central)")
    @argument("--eps", type=float, help="step, used as given (default: chosen per entry from |theta_i|)")
    @argument("--tol", type=float, help="judge by the rule ||a - n|| / ||a + n|| < TOL (default: noise-aware)")
    @argument("--sample", type=int, metavar="K", help="check K random entries per block")
    @argument("--directions", type=int, metavar="K", help="check along K random directions, then localize")
    @argument("--seed", type=int, help="make sampling, directions and probes repeatable")
    @argument("--shapes", metavar="SHAPES",
              help="block shapes of an unrolled theta: a literal such as '[(10,11),(1,11)]' or a name")
    @argument("--names", dest="block_names", metavar="A,B,...",
              help="block names of an unrolled theta, comma-separated")
    @argument("--vectorized", action="store_true", help="J takes a batch (a leading axis) and returns a cost per row")
    @argument("--executor", metavar="NAME", help="a concurrent.futures.Executor of the notebook to run J on")
    @argument("--progress", action="store_true", default=None, help="always show a progress bar")
    @argument("--no-progress", dest="progress", action="store_false", help="never show a progress bar")
    @argument("--cost", default="J", metavar="NAME", help="cell form: the cost's name (default: J)")
    @argument("--grad", metavar="NAME",
              help="cell form: the gradient's name (default: the cell's grad; "
                   "a cell that defines none has a J that returns (cost, grad))")
    @argument("-o", "--output", action="store_true", help="return the CheckResult")
    @argument("-q", "--quiet", action="store_true", help="display nothing")
    @line_cell_magic
    def gradcheck(self, line: str, cell: str | None = None) -> Any:
        """Check an analytic gradient against finite differences of the cost.

        Examples
        --------
        ::

            %gradcheck J grad theta
            %gradcheck cost_and_grad theta --method richardson
            %gradcheck J grad nn_params --shapes "[(10, 11), (10, 11), (1, 11)]" --names Theta1,Theta2,Theta3
            result = %gradcheck -q -o J grad theta
            %config GradCheckMagics.seed = 0

            %%gradcheck theta
            def J(theta): ...
            def grad(theta): ...
        """
        args = parse_argstring(self.gradcheck, line)
        if cell is None:
            J, grad, theta = self._line_target(args.targets)
        else:
            J, grad, theta = self._cell_target(args, cell)
            if J is None:  # the cell raised; IPython has shown its traceback
                return None
        result = self._run_check(J, grad, theta, self._options(args))
        if not args.quiet:
            self._show(result)
        return result if args.output else None

    # ------------------------------------------------------------ targets

    def _line_target(self, names: list[str]) -> tuple[Any, Any, Any]:
        if len(names) == 3:
            J, grad, theta = (self._lookup(name) for name in names)
            self._require_callable(names[0], J)
            self._require_callable(names[1], grad)
        elif len(names) == 2:
            J, theta = (self._lookup(name) for name in names)
            grad = None
            self._require_callable(names[0], J)
            if callable(theta):
                raise UsageError(f"{names[1]!r} is a function; the last name must be the point theta: "
                                 f"%gradcheck J grad theta, or %gradcheck cost_and_grad theta")
        else:
            raise UsageError(f"%gradcheck takes 'J grad theta' or 'cost_and_grad theta', got {len(names)} "
                             f"name{'s' if len(names) != 1 else ''}: {' '.join(names)}")
        return J, grad, theta

    def _cell_target(self, args: Any, cell: str) -> tuple[Any, Any, Any]:
        if len(args.targets) != 1:
            raise UsageError(f"%%gradcheck takes one name, the point theta, got {' '.join(args.targets)}; "
                             "the cell defines J and grad")
        before = self.shell.user_ns.get("grad")
        outcome = self.shell.run_cell(cell)
        if not outcome.success:
            return None, None, None
        J = self._lookup(args.cost, hint=" (the cell should define it; --cost NAME names another)")
        self._require_callable(args.cost, J)
        if args.grad is not None:
            grad = self._lookup(args.grad)
            self._require_callable(args.grad, grad)
        else:  # the cell's own grad; one left over from an earlier cell does not count
            grad = self.shell.user_ns.get("grad")
            grad = grad if callable(grad) and grad is not before else None
        return J, grad, self._lookup(args.targets[0])

    def _lookup(self, expression: str, hint: str = "") -> Any:
        namespace = self.shell.user_ns
        if expression.isidentifier() and not keyword.iskeyword(expression):
            if expression in namespace:
                return namespace[expression]
            visible = [name for name in namespace if not name.startswith("_") and name not in ("In", "Out")]
            near = difflib.get_close_matches(expression, visible, n=3, cutoff=0.5)
            suggestion = f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
            raise UsageError(f"name {expression!r} is not defined{hint}{suggestion}")
        try:
            return self.shell.ev(expression)
        except Exception as exc:
            raise UsageError(f"could not evaluate {expression!r}: {type(exc).__name__}: {exc}") from None

    @staticmethod
    def _require_callable(name: str, value: Any) -> None:
        if not callable(value):
            raise UsageError(f"{name!r} is not a function (its type is {type(value).__name__}); "
                             f"%gradcheck wants the cost (and gradient) functions first, theta last")

    # ------------------------------------------------------------ options

    def _options(self, args: Any) -> dict[str, Any]:
        options = {name: getattr(self, name) for name in self.trait_names(config=True)}
        options.update({name: value for name, value in vars(args).items()
                        if name in options and value is not None})
        if args.shapes is not None:
            options["shapes"] = self._shapes(args.shapes)
        if args.block_names is not None:
            if args.shapes is None:
                raise UsageError("--names needs --shapes: it names the blocks of an unrolled theta")
            options["names"] = [word.strip() for word in _unquote(args.block_names).split(",") if word.strip()]
        if args.vectorized:
            options["vectorized"] = True
        if args.executor is not None:
            options["executor"] = self._lookup(args.executor)
        return options

    def _shapes(self, text: str) -> Any:
        text = _unquote(text)
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            if text.isidentifier():
                return self._lookup(text)
            raise UsageError(f"--shapes {text!r} is neither a literal such as '[(10, 11), (1, 11)]' "
                             "nor a name") from None

    def _run_check(self, J: Any, grad: Any, theta: Any, options: dict[str, Any]) -> Any:
        try:
            return check(J, grad, theta, **options)
        except (ValueError, TypeError) as exc:
            if _raised_by_gradwidget(exc):  # a bad value or shape: say so in one line
                raise UsageError(str(exc)) from None
            raise  # the user's own J or grad failed: its traceback is the help

    def _show(self, result: Any) -> None:
        """The panel in a live kernel (with the HTML report for static renders), the text in a terminal."""
        from IPython.display import display

        display(result.widget() if getattr(self.shell, "kernel", None) is not None else result)


def _unquote(text: str) -> str:
    """The text without the quotes around it (IPython keeps them when it splits a magic's line)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _raised_by_gradwidget(exc: BaseException) -> bool:
    """True when the innermost frame is gradwidget's own code, not the user's J or grad."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(PACKAGE_DIR)


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and make their defaults configurable (``%load_ext gradwidget``)."""
    magics = GradCheckMagics(ipython, parent=ipython)
    ipython.register_magics(magics)
    # %reload_ext makes a new instance: %config must reach it, and only it
    ipython.configurables[:] = [c for c in ipython.configurables if not isinstance(c, GradCheckMagics)] + [magics]
