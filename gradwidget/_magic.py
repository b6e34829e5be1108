"""The ``%gradcheck`` and ``%%gradcheck`` magics.

Load them with ``%load_ext gradwidget``. Every option of `check` is a flag
and, when it is a plain value, a default that ``%config
GradCheckMagics.<option> = value`` sets; both are made from the options'
declaration (`gradwidget._options.OPTIONS`), validated as `check` validates
them.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import re
import types
import weakref
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import TraitError, TraitType

from ._array_checks import check_hessian, check_jacobian, check_jvp, check_vjp
from ._check import check
from ._layer import check_layer
from ._options import EXCLUSIVE, OPTIONS, InputError, Option, OptionError
from ._result import CheckResult

__all__ = ["GradCheckMagics", "load_ipython_extension"]

_SHOWN: weakref.WeakKeyDictionary[CheckResult, int] = weakref.WeakKeyDictionary()
"""Results a ``%gradcheck`` showed, with the execution count of its cell (see `_display_once`)."""

SHORT_FLAGS = {"method": "-m"}

FORMS: dict[str, tuple[Callable[..., CheckResult], str, int, int | None]] = {
    "layer": (check_layer, "FORWARD BACKWARD ARG [ARG ...]", 3, None),
    "vjp": (check_vjp, "F VJP X", 3, 3),
    "jvp": (check_jvp, "F JVP X", 3, 3),
    "jacobian": (check_jacobian, "F JAC X", 3, 3),
    "hessian": (check_hessian, "GRAD HESS X", 3, 3)}
"""The checks of array-valued functions, by flag: the function, its names on the line, and how many."""


class OptionTrait(TraitType[Any, Any]):
    """A ``%config`` default of one option, validated by the option's own rule when it is set."""

    def __init__(self, option: Option) -> None:
        super().__init__(default_value=option.default, allow_none=True, help=option.help)
        self.option = option
        self.info_text = option.accepts

    def validate(self, obj: Any, value: Any) -> Any:
        try:
            return self.option.validate(value)
        except OptionError as exc:
            raise TraitError(f"%config GradCheckMagics.{exc}") from None


GradCheckOptions = types.new_class("GradCheckOptions", (Magics,), exec_body=lambda namespace: namespace.update(
    {"__doc__": "The defaults of %gradcheck's options, one configurable trait per option of check.",
     **{option.name: OptionTrait(option).tag(config=True) for option in OPTIONS if option.configurable}}))


LAYER_EXAMPLES = """
        Layers, Jacobians and Hessians::

            %gradcheck --layer affine_forward affine_backward x w b
            %gradcheck --layer conv_forward_naive conv_backward_naive x w b conv_param --wrt x,w
            %gradcheck --layer batchnorm_forward batchnorm_backward x gamma beta bn_param --dout dout
            %gradcheck --vjp f f_vjp x
            %gradcheck --jvp grad hvp w
            %gradcheck --jacobian residual residual_jacobian u
            %gradcheck --hessian grad hess w

            %%gradcheck --layer x w b
            def affine_forward(x, w, b): ...
            def affine_backward(dout, cache): ...
"""


def _with_layer_examples(magic: Callable[..., Any]) -> Callable[..., Any]:
    """``magic`` with the examples of the layer forms at the end of its docstring (before its flags are added)."""
    magic.__doc__ = (magic.__doc__ or "").rstrip() + "\n" + LAYER_EXAMPLES
    return magic


def _form_flags(magic: Callable[..., Any]) -> Callable[..., Any]:
    """The flags of the checks of array-valued functions (`FORMS`) and of layers' ``wrt`` and ``dout``."""
    magic = argument("--dout", metavar="NAME", help="--layer: the upstream gradient (default: random, from --seed)")(
        magic)
    magic = argument("--wrt", metavar="NAMES", help="--layer: the arguments to differentiate, by name (x,w)")(magic)
    for form, (entry, usage, _, _) in reversed(FORMS.items()):
        magic = argument(f"--{form}", action="store_true", help=f"check with gradwidget.{entry.__name__}: {usage}")(
            magic)
    return magic


def _option_flags(magic: Callable[..., Any]) -> Callable[..., Any]:
    """Add a flag for every option of `check` to ``magic``'s arguments."""
    for option in reversed(OPTIONS):
        flag = f"--{option.name}"
        names = [SHORT_FLAGS[option.name], flag] if option.name in SHORT_FLAGS else [flag]
        help_text = f"{option.help} (default: {option.default})"
        if option.kind == "flag":
            magic = argument(flag, action="store_true", default=None, help=help_text)(magic)
        elif option.kind == "tristate":
            magic = argument(f"--no-{option.name}", dest=option.name, action="store_false",
                             help=f"never: {option.name}=False")(magic)
            magic = argument(flag, action="store_true", default=None, help=help_text)(magic)
        else:
            kinds: dict[str, dict[str, Any]] = {"choice": {"choices": list(option.choices)}, "float": {"type": float},
                                                "int": {"type": int}}
            magic = argument(*names, metavar=option.metavar, help=help_text, **kinds.get(option.kind, {}))(magic)
    return magic


@magics_class
class GradCheckMagics(GradCheckOptions):  # type: ignore[misc,valid-type]
    """``%gradcheck``: check a hand-written gradient from a notebook.

    The traits are the defaults of the magic's options; set them with
    ``%config GradCheckMagics.method = "richardson"`` and the like. A flag
    on the line overrides them.
    """

    @magic_arguments()
    @argument("targets", nargs="+", metavar="NAME",
              help="line: 'J grad theta', or 'cost_and_grad theta' when J returns (cost, grad); "
                   "cell: 'theta' (the cell defines J and grad). Names or expressions of the notebook.")
    @_option_flags
    @argument("--cost", default="J", metavar="NAME", help="cell form: the cost's name (default: J)")
    @argument("--grad", metavar="NAME",
              help="cell form: the gradient's name (default: the cell's grad; "
                   "a cell that defines none has a J that returns (cost, grad))")
    @_form_flags
    @argument("-o", "--output", action="store_true", help="return the CheckResult")
    @argument("-q", "--quiet", action="store_true", help="display nothing")
    @line_cell_magic
    @_with_layer_examples
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
        if _asks_for_help(line):
            print(self.gradcheck.__doc__)
            return None
        try:
            args = parse_argstring(self.gradcheck, line)
        except ValueError as exc:  # shlex: "No closing quotation" and the like
            raise UsageError(f"%gradcheck could not split its line: {exc} (a quote opened and not closed?)") \
                from None
        form = _form(args)
        if form is not None:
            return _array_check(self, form, args, cell)
        if args.wrt is not None or args.dout is not None:
            raise UsageError("--wrt and --dout go with --layer: %gradcheck --layer FORWARD BACKWARD ARG ... --wrt x,w")
        if cell is None:
            J, grad, theta = self._line_target(args.targets)
        else:
            J, grad, theta = self._cell_target(args, cell)
            if J is None:  # the cell raised; IPython has shown its traceback
                return None
        options = self._options(args)
        if options.get("names") is None and options.get("shapes") is None:
            options["names"] = _named_after(args.targets[-1], theta)
        __tracebackhide__ = True  # an exception of the user's J or grad shows their frames only
        return _run_and_show(self, lambda: check(J, grad, theta, **options), args, cell)

    # ------------------------------------------------------------ targets

    def _line_target(self, names: list[str]) -> tuple[Any, Any, Any]:
        if len(names) == 3:
            J, grad, theta = (self._lookup(name) for name in names)
            _require_callable(names[0], J)
            _require_callable(names[1], grad)
        elif len(names) == 2:
            J, theta = (self._lookup(name) for name in names)
            grad = None
            _require_callable(names[0], J)
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
        _require_callable(args.cost, J)
        if args.grad is not None:
            grad = self._lookup(args.grad)
            _require_callable(args.grad, grad)
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

    # ------------------------------------------------------------ options

    def _options(self, args: Any) -> dict[str, Any]:
        """The ``%config`` defaults, overridden by the flags on the line."""
        defaults = {name: getattr(self, name) for name in self.trait_names(config=True)}
        line = {option.name: self._value(option, getattr(args, option.name)) for option in OPTIONS
                if getattr(args, option.name) is not None}
        for first, second in EXCLUSIVE:  # a flag overrides a default it cannot combine with
            for given, other in ((first, second), (second, first)):
                if given in line and other not in line:
                    defaults.pop(other, None)
        return {**defaults, **line}

    def _value(self, option: Option, value: Any) -> Any:
        """A flag's value as `check` takes it (names and literals of the notebook read here)."""
        if option.kind == "words":
            return [word.strip() for word in _unquote(value).split(",") if word.strip()]
        if option.kind == "object":
            return self._lookup(value)
        if option.kind == "literal":
            text = _unquote(value)
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError):
                if text.isidentifier():
                    return self._lookup(text)
                raise UsageError(f"--{option.name} {text!r} is neither a literal such as "
                                 "'[(10, 11), (1, 11)]' nor a name") from None
        return value

    def _show(self, result: Any) -> None:
        """The panel in a live kernel (with the HTML report for static renders), the text in a terminal."""
        from IPython.display import display

        display(result.widget() if getattr(self.shell, "kernel", None) is not None else result)
        _SHOWN[result] = self.shell.execution_count


def _array_check(magics: GradCheckMagics, form: str, args: Any, cell: str | None) -> Any:
    """``--layer``, ``--vjp``, ``--jvp``, ``--jacobian`` or ``--hessian``: check_layer and its siblings."""
    entry, usage, least, most = FORMS[form]
    if cell is None:
        names = args.targets
        if len(names) < least or (most is not None and len(names) > most):
            raise UsageError(f"%gradcheck --{form} takes {usage}, got {len(names)} name"
                             f"{'s' if len(names) != 1 else ''}: {' '.join(names)}")
        functions = [magics._lookup(name) for name in names[:2]]
        for name, value in zip(names[:2], functions):
            _require_callable(name, value)
        rest = names[2:]
    else:
        defined = _cell_functions(magics, form, cell)
        if defined is None:
            return None
        functions, rest = defined, args.targets
        if most is not None and len(rest) != 1:
            raise UsageError(f"%%gradcheck --{form} takes one name, the point X, got {' '.join(rest)}; the "
                             "cell defines the two functions")
    values = [magics._lookup(name) for name in rest]
    options = magics._options(args)
    if form == "layer":
        if args.wrt is not None:
            options["wrt"] = [word.strip() for word in _unquote(args.wrt).split(",") if word.strip()]
        if args.dout is not None:
            options["dout"] = magics._lookup(args.dout)
    elif options.get("names") is None:
        options["names"] = _named_after(rest[0], values[0])
    elif args.wrt is not None or args.dout is not None:
        raise UsageError(f"--wrt and --dout go with --layer, not --{form}")
    __tracebackhide__ = True
    return _run_and_show(magics, lambda: entry(*functions, *values, **options), args, cell)


def _run_and_show(magics: GradCheckMagics, run: Callable[[], CheckResult], args: Any, cell: str | None) -> Any:
    """Run a check for the magic and show it; ``-o`` returns it.

    gradwidget's complaints about what it was given become one-line
    UsageErrors; an exception of the user's own functions keeps their frames.
    """
    try:
        result = run()
    except (InputError, OptionError) as exc:
        raise UsageError(_in_magic_words(str(exc), args.targets, cell is None)) from None
    except Exception as exc:  # the user's functions raised: show their frames, not gradwidget's
        __tracebackhide__ = True
        raise exc.with_traceback(_user_frames(exc.__traceback__)) from None
    if not args.quiet:
        magics._show(result)
    return result if args.output else None

def _cell_functions(magics: GradCheckMagics, form: str, cell: str) -> list[Any] | None:
    """Run the cell; the two functions it defines (``*_forward`` and ``*_backward`` first for a layer)."""
    try:
        tree = ast.parse(cell)
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    outcome = magics.shell.run_cell(cell)
    if not outcome.success:
        return None
    if form == "layer":
        forward = [n for n in defined if n.endswith("forward")]
        backward = [n for n in defined if n.endswith("backward")]
        if len(forward) == 1 and len(backward) == 1:
            defined = [forward[0], backward[0]]
    if len(defined) != 2:
        usage = FORMS[form][1].split()
        raise UsageError(f"%%gradcheck --{form}: the cell must define two functions ({usage[0]} and "
                         f"{usage[1]}), in that order; it defines {len(defined)}"
                         + (f": {', '.join(defined)}" if defined else ""))
    return [magics._lookup(name) for name in defined]


def _form(args: Any) -> str | None:
    """The array-valued check the flags ask for (at most one), or None for a gradient."""
    chosen = [form for form in FORMS if getattr(args, form)]
    if len(chosen) > 1:
        raise UsageError(f"%gradcheck takes one of --layer, --vjp, --jvp, --jacobian, --hessian, got "
                         f"{', '.join('--' + form for form in chosen)}")
    return chosen[0] if chosen else None


def _in_magic_words(message: str, targets: list[str], line_form: bool) -> str:
    """A message of `check` (or `check_layer`) as the magic's user would act on it."""
    message = re.sub(r"pass wrt=\(([^)]*)\)", lambda found: "pass --wrt " + ",".join(
        part.strip(" '\"") for part in found.group(1).split(",") if part.strip(" '\"")), message)
    message = message.replace("pass wrt= to choose", "pass --wrt to choose")
    message = message.replace("pass grad=None", "give two names: %gradcheck cost_and_grad theta")
    message = message.replace("with grad=None, J must", "with two names, the first must")
    if line_form and len(targets) == 3 and message.startswith("J must return a scalar cost"):
        J, grad, theta = targets
        message += f"; if the names are swapped, the cost comes first: %gradcheck {grad} {J} {theta}"
    return message


def _require_callable(name: str, value: Any) -> None:
    if not callable(value):
        raise UsageError(f"{name!r} is not a function (its type is {type(value).__name__}); "
                         f"%gradcheck wants the cost (and gradient) functions first, theta last")


def _asks_for_help(line: str) -> bool:
    """Whether the line is only a request for help (argparse here has no --help of its own)."""
    return line.split() in (["--help"], ["-h"])


def _named_after(variable: str, theta: Any) -> list[str] | None:
    """Block names from theta's variable: ``w`` for one array, ``params[0]``, ... for a list of them."""
    if not variable.isidentifier() or isinstance(theta, dict) or hasattr(type(theta), "_fields"):
        return None  # an expression, or blocks named by keys or fields
    if isinstance(theta, (list, tuple)) and theta and not all(isinstance(v, (int, float)) for v in theta):
        return [f"{variable}[{i}]" for i in range(len(theta))]
    return [variable]


def _user_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback from the first frame outside gradwidget on (the user's J or grad), or all of it."""
    package = __name__.rsplit(".", 1)[0]
    first = tb
    while first is not None and first.tb_frame.f_globals.get("__name__", "").startswith(package + "."):
        first = first.tb_next
    return first if first is not None else tb


def _unquote(text: str) -> str:
    """The text without the quotes around it (IPython keeps them when it splits a magic's line)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _display_once(result: CheckResult) -> None:
    """How the shell displays a result: not again in the cell whose ``%gradcheck -o`` showed it already."""
    from IPython import get_ipython
    from IPython.display import display

    shell = get_ipython()
    if shell is not None and _SHOWN.get(result) == shell.execution_count:
        return
    display({"text/html": result._repr_html_(), "text/plain": str(result)}, raw=True)


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and make their defaults configurable (``%load_ext gradwidget``)."""
    magics = GradCheckMagics(ipython, parent=ipython)
    ipython.register_magics(magics)
    ipython.display_formatter.ipython_display_formatter.for_type(CheckResult, _display_once)
    # %reload_ext makes a new instance: %config must reach it, and only it
    ipython.configurables[:] = [c for c in ipython.configurables if not isinstance(c, GradCheckMagics)] + [magics]
