"""gradwidget.torch and gradwidget.jax: custom derivatives right and wrong, each verdict and code, and the drop-ins."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import gradwidget.jax as gwj  # noqa: E402
import gradwidget.torch as gwt  # noqa: E402
from gradwidget import InputError  # noqa: E402


def tensor(*shape: int, dtype: Any = None, seed: int = 0, grad: bool = True) -> Any:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype or torch.float64).requires_grad_(grad)


def function(forward: Any, backward: Any) -> Any:
    """A custom autograd.Function from a forward(ctx, *inputs) and a backward(ctx, *grads)."""
    return type("Custom", (torch.autograd.Function,), {"forward": staticmethod(forward),
                                                       "backward": staticmethod(backward)}).apply


def matmul_forward(ctx: Any, a: Any, b: Any) -> Any:
    ctx.save_for_backward(a, b)
    return a @ b


def sine_forward(ctx: Any, x: Any) -> Any:
    ctx.save_for_backward(x)
    return x.sin()


def scaled_sum_forward(ctx: Any, a: Any, b: Any) -> Any:
    return 2 * a + 3 * b


def relu_forward(ctx: Any, x: Any) -> Any:
    ctx.save_for_backward(x)
    return x.clamp(min=0)


def codes(result: Any) -> list[str]:
    return [d.code for d in result.diagnoses]


SQUARE = (tensor(3, 4), tensor(4, 4, seed=1))
CASES = {  # name: (fn, inputs, verdict, codes)
    "matmul right": (function(matmul_forward, lambda ctx, g: (g @ ctx.saved_tensors[1].T,
                                                              ctx.saved_tensors[0].T @ g)), SQUARE, "passed", []),
    "matmul transposed": (function(matmul_forward, lambda ctx, g: (g @ ctx.saved_tensors[1].T,
                                                                   g.T @ ctx.saved_tensors[0])), SQUARE, "failed",
                          ["transpose"]),
    "sine with a forgotten factor": (function(sine_forward, lambda ctx, g: 0.5 * g * ctx.saved_tensors[0].cos()),
                                     (tensor(5),), "failed", ["scale"]),
    "sine ignoring grad_output": (function(sine_forward, lambda ctx, g: ctx.saved_tensors[0].cos()),
                                  (tensor(2, 3),), "failed", ["ignores-dout"]),
    "gradients swapped": (function(scaled_sum_forward, lambda ctx, g: (3 * g, 2 * g)),
                          (tensor(3), tensor(3, seed=1)), "failed", ["swapped"]),
    "relu at exact zeros": (function(relu_forward, lambda ctx, g: g * (ctx.saved_tensors[0] > 0)),
                            (torch.tensor([-1.0, 0.0, 0.5, 0.0, 2.0], dtype=torch.float64, requires_grad=True),),
                            "passed", ["kink"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_custom_functions_right_and_wrong(name: str) -> None:
    fn, inputs, verdict, expected = CASES[name]
    result = gwt.check(fn, *inputs, seed=0)
    assert (result.verdict, codes(result)) == (verdict, expected), [str(d) for d in result.diagnoses]


def test_max_pooling_ties_pass_with_a_kink() -> None:
    x = torch.tensor([[[[1.0, 1.0, 0.0, 2.0], [0.5, 1.0, 2.0, 2.0]]]], dtype=torch.float64, requires_grad=True)
    result = gwt.check(lambda x: torch.nn.functional.max_pool2d(x, 2), x, seed=0)
    assert result.passed, [str(d) for d in result.diagnoses]
    assert "kink" in codes(result)


class Square(torch.nn.Module):
    """A module with a hand-written backward: y = w * x**2, its backward forgetting the 2 for x."""

    def __init__(self, right: bool) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.linspace(0.5, 1.5, 4, dtype=torch.float64))
        factor = 2.0 if right else 1.0

        def backward(ctx: Any, g: Any) -> Any:
            x, w = ctx.saved_tensors
            return g * w * factor * x, (g * x * x).sum(0)

        def forward(ctx: Any, x: Any, w: Any) -> Any:
            ctx.save_for_backward(x, w)
            return w * x * x

        self.op = function(forward, backward)

    def forward(self, x: Any) -> Any:
        return self.op(x, self.weight)


def test_a_module_with_a_hand_written_backward() -> None:
    x = tensor(3, 4, seed=2)
    right = gwt.check_module(Square(True), x, seed=0)
    assert right.passed and [b.name for b in right.evidence.layout.blocks] == ["weight", "input0"]
    wrong = gwt.check_module(Square(False), x, seed=0)
    assert wrong.verdict == "failed" and codes(wrong) == ["scale"]
    assert "input0: the analytic gradient is 0.5 x the numeric one" in str(wrong.diagnoses[0])
    assert gwt.check_module(Square(False), x.detach(), seed=0).passed  # the weight's gradient alone is right


def test_float32_inputs_are_checked_in_float64_where_the_function_follows_their_dtype() -> None:
    x = tensor(6, dtype=torch.float32)
    right = gwt.check(torch.sin, x, seed=0)
    assert right.passed and right.evidence.promotion is not None
    wrong = gwt.check(function(sine_forward, lambda ctx, g: g * ctx.saved_tensors[0].cos() * (1 + 1e-4)), x,
                      seed=0)
    assert wrong.verdict == "failed" and codes(wrong) == ["scale"]


def test_complex_inputs_follow_torchs_convention() -> None:
    z = torch.randn(4, dtype=torch.complex128, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    right = gwt.check(lambda z: z * z.exp(), z, seed=0)
    assert right.passed and "z is complex" in right.evidence.subject.notes[-1]
    def square_forward(ctx: Any, z: Any) -> Any:
        ctx.z = z.detach()
        return z * z

    wrong = gwt.check(function(square_forward, lambda ctx, g: g * 2 * ctx.z), z, seed=0)
    assert wrong.verdict == "failed"  # torch wants g * conj(2 z): the derivative, conjugated
    right_square = gwt.check(function(square_forward, lambda ctx, g: g * (2 * ctx.z).conj()), z, seed=0)
    assert right_square.passed


def test_names_from_a_dict_or_names_and_inputs_passed_through() -> None:
    x, w = tensor(3, 4), tensor(4, 2, seed=1)
    index = torch.tensor([0, 2])
    result = gwt.check(lambda x, w, index: (x @ w)[index], {"x": x, "w": w, "index": index}, seed=0)
    assert result.passed and [b.name for b in result.evidence.layout.blocks] == ["x", "w"]
    assert "index is passed through, not differentiated" in result.evidence.subject.notes
    named = gwt.check(torch.mul, x, tensor(3, 4, seed=3, grad=False), names=["a", "b"], seed=0)
    assert [b.name for b in named.evidence.layout.blocks] == ["a"]


def test_zero_dimensional_tensors_keep_their_shape() -> None:
    a, b = tensor(), tensor(seed=1)  # found in op_db: 0-d inputs once came back as shape (1,)
    assert gwt.check(torch.mul, a, b, seed=0).passed
    assert gwt.check(torch.dot, tensor(4), tensor(4, seed=1), seed=0).passed


def test_outputs_of_several_shapes_zero_tensors_and_half_precision_outputs() -> None:
    x = tensor(4, 3)
    assert gwt.check(lambda x: torch.split(x, [1, 3]), x, seed=0).passed  # found in op_db: split, chunk, svd...
    assert gwt.check(torch.sgn, x, seed=0).passed  # its backward returns a ZeroTensor where x is 0
    assert gwt.check(lambda x: x.bfloat16() * 2, x, seed=0).verdict != "error"
    mean_too = gwt.check(lambda x: (x * 2, x.mean().detach()), x, seed=0)  # an output autograd does not follow
    assert mean_too.passed


def test_mistakes_are_clear_errors() -> None:
    with pytest.raises(InputError, match="no input of sin requires grad"):
        gwt.check(torch.sin, tensor(3, grad=False))
    with pytest.raises(InputError, match="no output of <lambda> requires grad"):
        gwt.check(lambda x: (x > 0).long(), tensor(3))
    with pytest.raises(InputError, match="names= has 1 names for 2 inputs"):
        gwt.check(torch.mul, tensor(2), tensor(2), names=["a"])
    with pytest.raises(InputError, match=r"a sparse tensor: pass \.to_dense\(\)"):
        gwt.check(lambda x: x.to_sparse(), tensor(3))
    nan = torch.tensor([1.0, float("nan")], dtype=torch.float64, requires_grad=True)
    with pytest.raises(InputError, match=r"arg0 has nan at arg0\[1\]: the check point must be finite"):
        gwt.check(torch.sin, nan)


def test_gradcheck_is_a_drop_in() -> None:
    x = tensor(3, 4)
    assert gwt.gradcheck(torch.tanh, (x,)) is True
    assert gwt.gradcheck(torch.tanh, x, eps=1e-6, atol=1e-5, rtol=1e-3, nondet_tol=0.0, check_undefined_grad=True,
                         check_batched_grad=False, fast_mode=True) is True
    wrong = function(sine_forward, lambda ctx, g: 0.5 * g * ctx.saved_tensors[0].cos())
    with pytest.raises(gwt.GradcheckError, match=r"0\.5 x the numeric one"):
        gwt.gradcheck(wrong, (tensor(5),))
    assert gwt.gradcheck(wrong, (tensor(5),), raise_exception=False) is False
    with pytest.raises(TypeError, match="unexpected keyword argument 'tolerance'"):
        gwt.gradcheck(torch.tanh, (x,), tolerance=1)


# ---------------------------------------------------------------- jax


def custom(backward: Any) -> Any:
    """sin(x) @ w with a custom VJP."""
    @jax.custom_vjp
    def f(x: Any, w: Any) -> Any:
        return jnp.sin(x) @ w

    f.defvjp(lambda x, w: (f(x, w), (x, w)), backward)
    return f


RNG = np.random.default_rng(0)
X, W = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2))


def test_a_jax_custom_vjp_right_and_wrong() -> None:
    right = custom(lambda res, g: (jnp.cos(res[0]) * (g @ res[1].T), jnp.sin(res[0]).T @ g))
    assert gwj.check(right, X, W, seed=0).passed
    doubled = custom(lambda res, g: (jnp.cos(res[0]) * (g @ res[1].T), 2 * jnp.sin(res[0]).T @ g))
    result = gwj.check(doubled, X, W, seed=0)
    assert result.verdict == "failed" and codes(result) == ["scale"] and result.diagnoses[0].block == "w"
    ignoring = custom(lambda res, g: (jnp.cos(res[0]) @ res[1] @ jnp.ones((2, 4)) * 0 + jnp.cos(res[0]),
                                      jnp.sin(res[0]).T @ g))
    assert gwj.check(ignoring, X, W, seed=0).verdict == "failed"


def test_jax_forward_mode_complex_inputs_and_float32() -> None:
    assert gwj.check(lambda x, w: jnp.sin(x) @ w, X, W, mode="fwd", seed=0).passed
    z = RNG.normal(size=4) + 1j * RNG.normal(size=4)
    assert gwj.check(lambda z: z * jnp.exp(z), z, seed=0).passed
    assert gwj.check(jnp.tanh, X.astype(np.float32), seed=0).evidence.promotion is not None
    with pytest.raises(InputError, match="forward mode with complex inputs"):
        gwj.check(jnp.exp, z, mode="fwd")


def test_jax_check_grads_is_a_drop_in() -> None:
    assert gwj.check_grads(jnp.sin, (X,), order=2) is None
    doubled = custom(lambda res, g: (jnp.cos(res[0]) * (g @ res[1].T), 2 * jnp.sin(res[0]).T @ g))
    with pytest.raises(AssertionError, match="rev mode of f is not right"):
        gwj.check_grads(doubled, (X, W), order=1, modes=("rev",))


def sine_with_jvp(sign: float) -> Any:
    """``sin(x) * w`` with a hand-written forward rule; ``sign=-1`` slips a sign in the w term."""
    @jax.custom_jvp
    def f(x: Any, w: Any) -> Any:
        return jnp.sin(x) * w

    @f.defjvp
    def rule(primals: Any, tangents: Any) -> Any:
        (x, w), (dx, dw) = primals, tangents
        return f(x, w), jnp.cos(x) * w * dx + sign * jnp.sin(x) * dw

    return f


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("modes", [("fwd",), ("rev",), ("fwd", "rev")])
@pytest.mark.parametrize("outputs", ["one", "two"])
def test_jax_check_grads_takes_several_arguments_and_outputs_in_both_modes(order: int, modes: tuple[str, ...],
                                                                          outputs: str) -> None:
    from jax.test_util import check_grads

    x, w = RNG.normal(size=4), RNG.normal(size=(4, 3))
    f = (lambda x, w: jnp.tanh(x @ w)) if outputs == "one" else (lambda x, w: (jnp.tanh(x @ w), jnp.sum(x ** 2)))
    with jax.enable_x64(True):
        assert check_grads(f, (x, w), order=order, modes=modes) is None  # jax's own passes it
    assert gwj.check_grads(f, (x, w), order=order, modes=modes) is None


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_a_wrong_custom_jvp_is_caught_in_both_modes_and_at_order_2(mode: str) -> None:
    from jax.test_util import check_grads

    x, w = RNG.normal(size=5), RNG.normal(size=5)
    assert gwj.check(sine_with_jvp(1.0), x, w, mode=mode, seed=0).passed
    assert gwj.check(lambda x, w: (sine_with_jvp(1.0)(x, w), jnp.cos(x)), x, w, mode=mode, seed=0).passed
    wrong = gwj.check(sine_with_jvp(-1.0), x, w, mode=mode, seed=0)
    assert wrong.verdict == "failed" and [b.name for b in wrong.blocks if not b.passed] == ["w"]
    with jax.enable_x64(True), pytest.raises(AssertionError):
        check_grads(sine_with_jvp(-1.0), (x, w), order=2, modes=(mode,))  # jax's own fails it too
    with pytest.raises(AssertionError, match=f"{mode} mode of f is not right"):
        gwj.check_grads(sine_with_jvp(-1.0), (x, w), order=2, modes=(mode,))


def test_torch_round_with_its_zero_gradient_is_never_failed() -> None:
    verdicts = []
    for seed in range(8):
        x = tensor(6, 6, seed=seed)
        verdicts.append(gwt.check(lambda x: torch.round(x, decimals=3), x, seed=seed, progress=False).verdict)
    assert "failed" not in verdicts and verdicts.count("passed") >= 6, verdicts


def test_torch_logcumsumexp_of_large_values_along_a_middle_axis_passes_as_torchs_own() -> None:
    """As op_db's sample: values in [-9, 9] and a fifth of them 1e4 (J about 1e4 to 1e5)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(5, 5, 5, generator=generator, dtype=torch.float64) * 18 - 9
    x[torch.rand(5, 5, 5, generator=generator) < 0.2] = 1e4
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: torch.logcumsumexp(x, 1), (x,))
    verdicts = [gwt.check(lambda x: torch.logcumsumexp(x, 1), x, seed=seed, progress=False).verdict
                for seed in range(8)]
    assert verdicts == ["passed"] * 8, verdicts


def test_a_right_derivative_of_cancelling_terms_is_not_blamed_on_a_global_at_the_second_point() -> None:
    """jvp(f) at order 2: J = <v, (f, df)> is a sum of terms far larger than itself, rounded far above u * |J|."""
    rng = np.random.default_rng(7)
    for _ in range(4):
        x, w = rng.normal(size=4), rng.normal(size=(4, 3))

    def f_jvp(*both: Any) -> Any:
        return jax.jvp(lambda x, w: jnp.tanh(x @ w), tuple(both[:2]), tuple(both[2:]))

    results = [gwj.check(f_jvp, x, w, x, w, mode="fwd", seed=seed) for seed in range(4, 10)]
    assert all(r.passed for r in results), [str(r) for r in results if not r.passed]


def test_a_zero_gradient_that_float32_returns_as_rounding_noise_is_not_called_nonlinear() -> None:
    x = tensor(2, seed=1).detach().float().requires_grad_(True)  # the correlation of two numbers is constant
    result = gwt.check(torch.corrcoef, x, seed=0, progress=False)
    assert result.passed, str(result)
    relu_ignoring = function(lambda ctx, x: x.clamp(min=0), lambda ctx, g: torch.ones_like(g))
    assert "ignores-dout" in codes(gwt.check(relu_ignoring, tensor(3, 4), seed=0, progress=False))
