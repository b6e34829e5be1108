"""Parameter structures: round trips, names, and what grad may return."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradwidget as gw
from gradwidget._params import flatten

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
floats = st.floats(-1e6, 1e6, allow_nan=False, width=64)
arrays = shapes.flatmap(lambda s: hnp.arrays(np.float64, s, elements=floats))
trees = st.one_of(
    arrays,
    st.dictionaries(st.text("abcxyz", min_size=1, max_size=3), arrays, min_size=1, max_size=4),
    st.lists(arrays, min_size=1, max_size=4),
    st.lists(arrays, min_size=1, max_size=4).map(tuple),
)


def leaves(tree: object) -> list[np.ndarray]:
    if isinstance(tree, dict):
        return list(tree.values())
    if isinstance(tree, (list, tuple)):
        return list(tree)
    return [tree]


@given(trees)
def test_structures_round_trip_exactly(tree: object) -> None:
    layout, flat = flatten(tree)
    back = layout.unflatten(flat)
    assert type(back) is type(tree) or isinstance(tree, np.ndarray)
    for original, restored in zip(leaves(tree), leaves(back)):
        assert restored.shape == np.shape(original)
        assert np.array_equal(restored, original)
    if isinstance(tree, dict):
        assert list(back) == list(tree)
    again, _ = layout.flatten_like(back)
    assert np.array_equal(again, flat)


@given(trees)
def test_flat_gradient_accepted_for_any_structure(tree: object) -> None:
    layout, flat = flatten(tree)
    vector, transposed = layout.flatten_like(flat.copy())
    assert np.array_equal(vector, flat) and transposed == []


@given(st.lists(shapes, min_size=1, max_size=4), st.data())
def test_unrolled_blocks_are_views_in_order(block_shapes: list, data: st.DataObject) -> None:
    size = sum(int(np.prod(s)) for s in block_shapes)
    theta = data.draw(hnp.arrays(np.float64, size, elements=floats))
    layout, flat = flatten(theta, shapes=block_shapes)
    assert [b.shape for b in layout.blocks] == [tuple(s) for s in block_shapes]
    assert layout.blocks[-1].stop == size
    assert np.array_equal(flat, theta) and flat is not theta


def test_entry_names() -> None:
    layout, _ = flatten({"W": np.zeros((2, 3)), "b": np.zeros(2), "c": np.float64(1.0)})
    assert layout.entry_name(4) == "W[1, 1]"
    assert layout.entry_name(7) == "b[1]"
    assert layout.entry_name(8) == "c"
    layout, _ = flatten(np.zeros(231), shapes=[(10, 11), (10, 11), (1, 11)], names=["T1", "T2", "T3"])
    assert layout.entry_name(230) == "T3[0, 10]"
    layout, _ = flatten([np.zeros(2), np.zeros(2)])
    assert layout.entry_name(3) == "theta[1][1]"


def test_ints_become_float64_and_float32_stays() -> None:
    assert flatten([2, 3])[1].dtype == np.float64
    assert flatten(np.zeros(3, np.float32))[1].dtype == np.float32


@pytest.mark.parametrize(("theta", "options", "message"), [
    (np.zeros(5), {"shapes": [(2, 2)]}, r"shapes=\[\(2, 2\)\] hold 4 entries but theta has shape \(5,\)"),
    (np.array([1.0, np.nan]), {}, r"theta has nan at theta\[1\]"),
    ({"W": np.array([1 + 1j])}, {}, "theta block 'W' is complex"),
    (np.array([]), {}, "theta has no entries"),
    (np.array(["a"]), {}, "theta has dtype <U1; expected a float array"),
    ({"layer": {"W": np.ones(2)}}, {}, "theta block 'layer' is a dict: blocks must be arrays"),
])
def test_bad_theta_is_named(theta: object, options: dict, message: str) -> None:
    with pytest.raises(gw.InputError, match=message):
        flatten(theta, **options)


@pytest.mark.parametrize(("returned", "message"), [
    ({"W": np.zeros((2, 3))}, r"grad returned a dict with no key 'b'; theta has keys \['W', 'b'\]"),
    ({"W": np.zeros((2, 3)), "b": np.zeros(2), "c": 0}, "an unexpected key 'c'"),
    ({"W": np.zeros((2, 4)), "b": np.zeros(2)}, r"grad returned shape \(2, 4\) for block 'W', expected \(2, 3\)"),
    ([np.zeros((2, 3))], r"grad returned a list; expected a dict with keys"),
    (np.zeros(7), r"grad returned an array of shape \(7,\) \(7 entries\); expected dict of arrays"),
    (None, "grad returned None"),
])
def test_bad_gradient_is_named(returned: object, message: str) -> None:
    layout, _ = flatten({"W": np.zeros((2, 3)), "b": np.zeros(2)})
    with pytest.raises(ValueError, match=message):
        layout.flatten_like(returned)


def test_a_list_gradient_of_the_wrong_length_is_counted_in_words() -> None:
    layout, _ = flatten([np.zeros(2)])
    with pytest.raises(ValueError, match=r"grad returned 2 arrays; expected 1 array like theta"):
        layout.flatten_like([np.zeros(2), np.zeros(2)])


def test_article_style_shape_error() -> None:
    layout, _ = flatten([np.zeros((10, 11)), np.zeros((10, 11))])
    with pytest.raises(ValueError, match=r"shape \(10, 26\) for block 'theta\[1\]', expected \(10, 11\)"):
        layout.flatten_like([np.zeros((10, 11)), np.zeros((10, 26))])


def test_row_for_vector_is_accepted_and_reversed_shape_is_flagged() -> None:
    layout, _ = flatten(np.zeros(3))
    flat, transposed = layout.flatten_like(np.array([[1.0, 2.0, 3.0]]))
    assert flat.tolist() == [1.0, 2.0, 3.0] and transposed == []
    layout, _ = flatten({"W": np.zeros((2, 3))})
    flat, transposed = layout.flatten_like({"W": np.arange(6.0).reshape(3, 2)})
    assert transposed == ["W"]
    assert flat.tolist() == np.arange(6.0).reshape(3, 2).T.ravel().tolist()
