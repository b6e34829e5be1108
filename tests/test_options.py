"""The options of check, declared once: validated in one place, and every entry point made from the declaration."""

from __future__ import annotations

import inspect
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import gradwidget as gw
from gradwidget._options import METHODS, OPTIONS, CheckOptions, parse_options


def J(x: np.ndarray) -> float:
    return float(np.sum(x ** 2))


def grad(x: np.ndarray) -> np.ndarray:
    return 2 * x


X = np.array([0.5, -0.3])


@pytest.mark.parametrize(("options", "option"), [
    ({"method": "backward"}, "method"),
    ({"method": 3}, "method"),
    ({"eps": 0.0}, "eps"),
    ({"eps": -1e-4}, "eps"),
    ({"eps": float("nan")}, "eps"),
    ({"eps": float("inf")}, "eps"),
    ({"eps": "1e-4"}, "eps"),
    ({"eps": True}, "eps"),
    ({"tol": -1}, "tol"),
    ({"tol": "a"}, "tol"),
    ({"seed": "abc"}, "seed"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"sample": True}, "sample"),
    ({"sample": 0}, "sample"),
    ({"directions": 2.5}, "directions"),
    ({"progress": "yes"}, "progress"),
    ({"vectorized": "yes"}, "vectorized"),
    ({"vectorized": 1}, "vectorized"),
    ({"executor": object()}, "executor"),
    ({"shapes": "10,11"}, "shapes"),
    ({"shapes": [(2, -1)]}, "shapes"),
    ({"shapes": [(2.5,)]}, "shapes"),
    ({"shapes": []}, "shapes"),
    ({"shapes": [(2,)], "names": "ab"}, "names"),
    ({"shapes": [(1,), (1,)], "names": ["a", "a"]}, "names"),
    ({"shapes": [(2,)], "names": [""]}, "names"),
])
def test_each_bad_value_is_an_option_error_naming_the_option(options: dict, option: str) -> None:
    with pytest.raises(gw.OptionError) as info:
        gw.check(J, grad, X, **options)
    assert info.value.option == option
    assert str(info.value).startswith(f"{option}=")
    assert "must be" in str(info.value)


def test_option_errors_are_value_and_type_errors() -> None:
    with pytest.raises(ValueError, match="eps="):
        gw.check(J, grad, X, eps=-1.0)
    with pytest.raises(TypeError, match="eps="):
        gw.check(J, grad, X, eps="1e-4")


def test_an_unknown_option_gets_a_suggestion() -> None:
    with pytest.raises(gw.OptionError, match=r"unknown option 'epsilon'; did you mean 'eps'\?"):
        gw.check(J, grad, X, epsilon=1e-4)
    with pytest.raises(gw.OptionError, match="the options are method, eps, tol"):
        gw.check(J, grad, X, zzz=1)


@pytest.mark.parametrize(("options", "message"), [
    ({"sample": 3, "directions": 3}, "sample= and directions= do not combine"),
    ({"vectorized": True, "executor": ThreadPoolExecutor(1)}, "vectorized= and executor= do not combine"),
    ({"directions": 3, "method": "richardson"}, "directions= uses central differences"),
    ({"shapes": [(1,), (1,)], "names": ["a"]}, "names= has 1 names for 2 shapes"),
])
def test_options_that_exclude_each_other(options: dict, message: str) -> None:
    with pytest.raises(gw.OptionError, match=message):
        parse_options(options)


def test_values_are_normalized_for_the_engine() -> None:
    parsed = parse_options({"tol": np.float32(1e-3), "eps": 1, "sample": np.int64(3), "seed": np.uint8(7),
                            "shapes": [[2, 3], 4], "names": ("a", "b"), "vectorized": np.bool_(False)})
    assert type(parsed.tol) is float and type(parsed.eps) is float
    assert type(parsed.sample) is int and parsed.seed == 7
    assert parsed.shapes == ((2, 3), (4,)) and parsed.names == ("a", "b")
    assert parsed.vectorized is False
    assert json.dumps(parsed.given()["tol"]) == json.dumps(float(np.float32(1e-3)))


def test_given_lists_only_what_differs_from_the_defaults() -> None:
    assert CheckOptions().given() == {}
    assert parse_options({"method": "central", "seed": 0}).given() == {"seed": 0}


def test_checks_signature_and_docstring_come_from_the_declaration() -> None:
    signature = inspect.signature(gw.check)
    keyword = {p.name: p.default for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keyword == {o.name: o.default for o in OPTIONS}
    for option in OPTIONS:
        assert f"\n{option.name} : " in gw.check.__doc__


def test_the_magic_has_a_flag_and_the_config_a_trait_for_each_option() -> None:
    from gradwidget._magic import GradCheckMagics

    actions = {a.dest: a for a in GradCheckMagics.gradcheck.parser._actions}
    assert {o.name for o in OPTIONS} <= set(actions)
    assert actions["method"].choices == list(METHODS)
    traits = set(GradCheckMagics.class_trait_names(config=True))
    assert traits == {o.name for o in OPTIONS if o.configurable}


def test_the_panel_takes_every_option_but_progress() -> None:
    from gradwidget.display._panel import OPTION, PANEL_OPTIONS

    assert set(PANEL_OPTIONS) == {o.name for o in OPTIONS} - {"progress"}
    assert list(OPTION["method"].choices) == list(METHODS)
