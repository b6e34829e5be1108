"""gradwidget.torch.check of low-precision functions: the formula in float64, the gradient judged by reference.

Each case is a custom ``autograd.Function`` of our own in bfloat16 or
float16, right and wrong, with torch's own verdicts beside gradwidget's:
torch's gradcheck on the low-precision inputs, and of the formula on float64 copies.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

import gradwidget.torch as gwt  # noqa: E402
from gradwidget import InputError  # noqa: E402
from gradwidget._torch_precision import Float64  # noqa: E402

LOW = [torch.bfloat16, torch.float16]


def tensors(dtype: Any, *shapes: tuple[int, ...], scale: float = 1.0) -> list[Any]:
    generator = torch.Generator().manual_seed(0)
    return [(scale * torch.randn(shape, generator=generator, dtype=torch.float64)).to(dtype).requires_grad_(True)
            for shape in shapes]


def torch_says(fn: Any, inputs: list[Any]) -> bool:
    try:
        return bool(torch.autograd.gradcheck(fn, tuple(inputs), raise_exception=False))
    except Exception:  # torch refuses or fails the inputs
        return False


def in_float64(inputs: list[Any]) -> list[Any]:
    return [t.detach().double().requires_grad_(True) for t in inputs]


def torch_says_of_formula(fn: Any, inputs: list[Any]) -> bool:
    """torch's gradcheck of ``fn`` run in float64 (its casts raised, as gradwidget runs the formula)."""
    with Float64():
        return torch_says(fn, in_float64(inputs))


class Matmul(torch.autograd.Function):
    """A kernel's habit: low-precision in and out, products summed in float32."""

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any) -> Any:
        ctx.save_for_backward(a, b)
        return (a.float() @ b.float()).to(a.dtype)

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, b = ctx.saved_tensors
        return (g.float() @ b.float().T).to(a.dtype), (a.float().T @ g.float()).to(b.dtype)


class MatmulSummedLow(Matmul):
    """The same, but da summed term by term in the inputs' precision: right in float64, lossy in bfloat16."""

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        a, b = ctx.saved_tensors
        da = torch.zeros_like(a)
        for k in range(g.shape[1]):
            da = da + g[:, k:k + 1] * b[:, k][None, :]
        return da, (a.float().T @ g.float()).to(b.dtype)


class MatmulScaled(Matmul):
    """A wrong formula: db twice too large."""

    @staticmethod
    def backward(ctx: Any, g: Any) -> Any:
        da, db = Matmul.backward(ctx, g)
        return da, 2 * db


def matmul_inputs(dtype: Any) -> list[Any]:
    a, b = tensors(dtype, (3, 8), (8, 300))
    return [a, (b / 8).detach().requires_grad_(True)]


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_a_right_low_precision_backward_passes_where_torch_cannot_tell(dtype: Any) -> None:
    inputs = matmul_inputs(dtype)
    result = gwt.check(Matmul.apply, *inputs, progress=False)
    assert result.passed, str(result)
    assert "held to 2 x the error of its forward with Matmul differentiated by autograd" in str(result)
    assert not torch_says(Matmul.apply, inputs)  # torch's gradcheck fails it in its own precision
    assert torch_says_of_formula(Matmul.apply, inputs)


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_a_sum_in_low_precision_fails_as_precision_loss_where_torch_passes_its_formula(dtype: Any) -> None:
    inputs = matmul_inputs(dtype)
    result = gwt.check(MatmulSummedLow.apply, *inputs, names=["a", "b"], progress=False)
    assert result.verdict == "failed"
    assert [d.code for d in result.diagnoses] == ["precision-loss"]
    assert result.diagnoses[0].block == "a"
    assert [(b.name, b.verdict) for b in result.blocks] == [("a", "failed"), ("b", "passed")]
    assert torch_says_of_formula(MatmulSummedLow.apply, inputs)  # right in float64: torch passes it there


def test_a_wrong_formula_is_found_in_float64_and_named() -> None:
    inputs = matmul_inputs(torch.bfloat16)
    result = gwt.check(MatmulScaled.apply, *inputs, names=["a", "b"], progress=False)
    assert result.verdict == "failed"
    assert [d.code for d in result.diagnoses] == ["scale"] and result.diagnoses[0].block == "b"
    assert not torch_says_of_formula(MatmulScaled.apply, inputs)


def test_a_function_that_casts_inside_runs_in_float64_and_is_judged_against_its_reference() -> None:
    a, b = tensors(torch.float32, (3, 8), (8, 300))

    def bf16_matmul(a: Any, b: Any) -> Any:  # float32 in and out, bfloat16 inside
        return (a.to(torch.bfloat16) @ b.bfloat16()).float()

    lossy = gwt.check(bf16_matmul, a, b, reference=lambda a, b: a @ b, progress=False)
    assert lossy.verdict == "failed" and lossy.diagnoses[0].code == "precision-loss"
    in_bf16 = gwt.check(bf16_matmul, a, b, reference=bf16_matmul, progress=False)
    assert in_bf16.passed, str(in_bf16)  # held to what bfloat16 itself does
    assert torch.get_default_dtype() == torch.float32


def test_a_function_without_custom_functions_is_its_own_plain_implementation() -> None:
    (x,) = tensors(torch.bfloat16, (4, 5))
    result = gwt.check(torch.tanh, x, progress=False)
    assert result.passed
    assert "its gradient is autograd's, the plain implementation itself" in str(result)


def test_a_setup_context_function_is_replaced_by_its_forward() -> None:
    class Square(torch.autograd.Function):
        @staticmethod
        def forward(x: Any) -> Any:
            return (x.float() ** 2).to(x.dtype)

        @staticmethod
        def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (x,) = ctx.saved_tensors
            return (2 * g.float() * x.float()).to(x.dtype)

    (x,) = tensors(torch.float16, (6,))
    result = gwt.check(lambda x: Square.apply(x), x, progress=False)
    assert result.passed and "Square differentiated by autograd" in str(result)


def test_what_cannot_be_judged_is_said_not_passed() -> None:
    inputs = matmul_inputs(torch.bfloat16)
    bound = Matmul.apply
    with pytest.raises(InputError, match="through an apply bound before the check"):
        gwt.check(lambda a, b: bound(a, b) * 1, *inputs, progress=False)

    class ViaNumpy(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            ctx.save_for_backward(x)
            return torch.from_numpy(x.detach().double().numpy() ** 2).to(x.dtype)

        @staticmethod
        def backward(ctx: Any, g: Any) -> Any:
            (x,) = ctx.saved_tensors
            return 2 * g * x

    (x,) = tensors(torch.bfloat16, (5,))
    with pytest.raises(InputError, match="pass reference="):
        gwt.check(lambda x: ViaNumpy.apply(x), x, progress=False)
    assert gwt.check(lambda x: ViaNumpy.apply(x), x, reference=lambda x: x * x, progress=False).passed
    with pytest.raises(InputError, match="the reference computes something else"):
        gwt.check(lambda x: ViaNumpy.apply(x), x, reference=lambda x: x * x * x, progress=False)


def test_careless_input_gets_a_clear_error_and_the_inputs_stay_as_given() -> None:
    inputs = matmul_inputs(torch.bfloat16)
    before = [t.detach().clone() for t in inputs]
    with pytest.raises(InputError, match="reference= must be callable"):
        gwt.check(Matmul.apply, *inputs, reference="a @ b", progress=False)
    with pytest.raises(InputError, match="inputs are float64"):
        gwt.check(torch.sin, *in_float64(inputs[:1]), reference=torch.sin, progress=False)
    gwt.check(MatmulSummedLow.apply, *inputs, progress=False)
    assert all(torch.equal(t, b) and t.dtype == torch.bfloat16 for t, b in zip(inputs, before))
    assert inputs[0].grad is None


def test_float64_mode_raises_every_cast_and_restores_what_it_changed() -> None:
    backward_entry = torch.autograd.function.BackwardCFunction.apply
    x = torch.ones(3, dtype=torch.float64)
    held = torch.ones(3, dtype=torch.bfloat16)  # a constant the function holds
    seen = []

    def casts() -> None:
        with Float64():
            seen.extend([x.half().dtype, x.to(torch.bfloat16).dtype, torch.zeros(2, dtype=torch.float32).dtype,
                         torch.ones(2).dtype, (held * x).dtype, x.to(torch.complex64).dtype])
            raise RuntimeError("left by an error")

    with pytest.raises(RuntimeError, match="left by an error"):
        casts()
    assert seen == [torch.float64] * 5 + [torch.complex128]
    assert held.dtype == torch.bfloat16
    assert torch.get_default_dtype() == torch.float32
    assert torch.autograd.function.BackwardCFunction.apply is backward_entry
    assert x.half().dtype == torch.float16
