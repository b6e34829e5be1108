"""Parameter trees <-> one flat float vector.

A notebook holds its parameters as one array, a dict or list of arrays, or an
unrolled vector with block shapes. The checker works on one flat vector; a
`Layout` remembers how to go back and forth, names every entry for messages,
and validates what ``grad`` returns against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np

from ._options import InputError, OptionError, counted

__all__ = ["Block", "Layout", "ReadGradient", "ShapeMismatch", "fit_shape", "flatten", "random_init", "read_gradient"]


@dataclass(frozen=True)
class Block:
    """One parameter array: its name, shape and slice of the flat vector."""

    name: str
    shape: tuple[int, ...]
    start: int

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def stop(self) -> int:
        return self.start + self.size

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)

    @property
    def grid(self) -> tuple[int, int]:
        """The block laid out in 2-D for a heatmap: a vector as one row, higher ranks as rows x rest."""
        if not self.shape:
            return (1, 1)
        if len(self.shape) == 1:
            return (1, self.shape[0])
        return (self.shape[0], self.size // self.shape[0] if self.shape[0] else 0)

    def index(self, offset: int) -> tuple[int, ...]:
        """The multi-index in this block of flat position ``start + offset``."""
        return tuple(int(i) for i in np.unravel_index(offset, self.shape)) if self.shape else ()

    def entry_name(self, offset: int) -> str:
        index = self.index(offset)
        return f"{self.name}[{', '.join(map(str, index))}]" if index else self.name


@dataclass(frozen=True)
class Layout:
    """How a parameter structure maps onto a flat vector.

    ``kind`` is ``"array"`` (one ndarray), ``"dict"``, ``"list"``, ``"tuple"``
    (a tuple or a namedtuple: ``container`` is its type) or ``"unrolled"`` (a
    flat vector with block shapes).
    """

    kind: str
    blocks: tuple[Block, ...]
    keys: tuple[Any, ...] = ()
    shape: tuple[int, ...] = ()
    container: type = tuple

    @property
    def size(self) -> int:
        return self.blocks[-1].stop

    def block_of(self, position: int) -> Block:
        """The block holding flat ``position``."""
        starts = [b.start for b in self.blocks]
        return self.blocks[int(np.searchsorted(starts, position, side="right")) - 1]

    def entry_name(self, position: int) -> str:
        """A readable name of flat ``position``, e.g. ``"W1[2, 3]"``."""
        block = self.block_of(position)
        return block.entry_name(position - block.start)

    def positions(self, entries: Any) -> np.ndarray:
        """Flat positions of ``entries``: positions or names such as ``"W1[2, 3]"`` (one or a list)."""
        names = {self.entry_name(i): i for i in range(self.size)} if self.size <= 1 << 20 else {}
        chosen = []
        for entry in np.atleast_1d(np.asarray(entries, dtype=object)).tolist():
            if isinstance(entry, str):
                if entry not in names:
                    raise InputError(f"no entry named {entry!r}; names look like {self.entry_name(0)!r}")
                chosen.append(names[entry])
            elif not 0 <= int(entry) < self.size:
                raise InputError(f"entry {entry} is outside theta's {self.size} entries")
            else:
                chosen.append(int(entry))
        return np.array(chosen, dtype=int)

    def views(self, flat: np.ndarray) -> Any:
        """The structure J expects, made of views into ``flat`` (no copies)."""
        if self.kind == "array":
            return flat.reshape(self.shape)
        if self.kind == "unrolled":
            return flat
        return self._container([flat[b.slice].reshape(b.shape) for b in self.blocks])

    def batch_views(self, rows: np.ndarray) -> Any:
        """The structure J expects, each array with a leading batch axis (one row a point)."""
        batch = rows.shape[0]
        if self.kind == "array":
            return rows.reshape(batch, *self.shape)
        if self.kind == "unrolled":
            return rows
        return self._container([rows[:, b.slice].reshape(batch, *b.shape) for b in self.blocks])

    def _container(self, arrays: list[np.ndarray]) -> Any:
        """The user's kind of container around ``arrays`` (a namedtuple stays one)."""
        if self.kind == "dict":
            return dict(zip(self.keys, arrays))
        if self.kind == "tuple":
            return self.container(*arrays) if self.container is not tuple else tuple(arrays)
        return arrays

    def row_of_batch(self, tree: Any, row: int) -> Any:
        """Item ``row`` of every array of a batched structure (what a vectorized J's grad gives)."""
        if isinstance(tree, Mapping):
            return {k: np.asarray(v)[row] for k, v in tree.items()}
        if isinstance(tree, (list, tuple)) and self.kind in ("list", "tuple"):
            return [np.asarray(v)[row] for v in tree]
        return np.asarray(tree)[row]

    def rebuild(self, structure: Any) -> Any:
        """A new container of the same arrays (J may add keys or items to its own)."""
        if self.kind == "dict":
            return dict(structure)
        if self.kind == "list":
            return list(structure)
        return structure

    def unflatten(self, flat: np.ndarray) -> Any:
        """A fresh copy of ``flat`` in the user's structure."""
        return self.views(np.array(flat, copy=True))

    def flatten_like(self, tree: Any, what: str = "grad") -> tuple[np.ndarray, list[str]]:
        """Validate ``tree`` (what ``grad`` returned) and flatten it.

        Returns the flat float64 vector and the names of blocks that came back
        with their 2-D shape reversed (their values are transposed into place).
        A flat vector of the right size is accepted for any structure; a
        block in another shape of the same size is reshaped, one with extra
        broadcast axes is summed over them (`read_gradient` says which).

        Raises
        ------
        InputError
            Naming the block, the expected and the received shape or key.
        """
        read = read_gradient(self, tree, what)
        unusable = [m for m in read.mismatched.values() if m.unusable]
        if unusable:
            m = unusable[0]
            label = "" if self.kind == "array" else f" for block '{m.block}'"
            raise InputError(f"{what} returned shape {m.returned}{label}, expected {m.expected}")
        return read.flat, read.transposed

    def parts(self, tree: Any, what: str) -> list[Any]:
        if self.kind == "dict":
            if not isinstance(tree, Mapping):
                got = type(tree).__name__
                raise InputError(f"{what} returned a {got}; expected a dict with keys {list(self.keys)}")
            missing = [k for k in self.keys if k not in tree]
            extra = [k for k in tree if k not in self.keys]
            if missing or extra:
                problem = f"no key {missing[0]!r}" if missing else f"an unexpected key {extra[0]!r}"
                raise InputError(f"{what} returned a dict with {problem}; theta has keys {list(self.keys)}")
            return [tree[k] for k in self.keys]
        if not isinstance(tree, Sequence) or len(tree) != len(self.blocks):
            got = counted(len(tree), "array") if isinstance(tree, Sequence) else f"a {type(tree).__name__}"
            raise InputError(f"{what} returned {got}; expected {counted(len(self.blocks), 'array')} like theta")
        return list(tree)

    def expected(self) -> str:
        if self.kind == "array":
            return f"an array of shape {self.shape}"
        listed = ", ".join(f"{b.name} {b.shape}" for b in self.blocks)
        return f"{self.kind} of arrays ({listed}) or a flat vector of {self.size} entries"


def read_gradient(layout: Layout, tree: Any, what: str = "grad") -> ReadGradient:
    """What ``grad`` returned, flattened: a block it returned with another number of entries is NaN.

    Raises
    ------
    InputError
        When nothing can be matched to the blocks (None, a missing key,
        a flat vector of another size, values that are not numbers).
    """
    if tree is None:
        raise InputError(f"{what} returned None; expected {layout.expected()}")
    if layout.kind in ("dict", "list", "tuple") and not _is_arraylike_leaf(tree):
        parts = layout.parts(tree, what)
    elif layout.kind == "unrolled" and isinstance(tree, (list, tuple)) and len(tree) == len(layout.blocks) > 1:
        parts = list(tree)
    else:
        array = _as_float_array(tree, what, "")
        if array.size == layout.size and (array.ndim == 1 or layout.kind == "unrolled"):
            return ReadGradient(array.reshape(-1).astype(np.float64), [], {})
        if layout.kind == "array":
            parts = [array]
        else:
            raise InputError(
                f"{what} returned an array of shape {array.shape} ({array.size} entries); "
                f"expected {layout.expected()}"
            )
    flat = np.empty(layout.size)
    transposed: list[str] = []
    mismatched: dict[str, ShapeMismatch] = {}
    for block, part in zip(layout.blocks, parts):
        label = "" if layout.kind == "array" else f" for block '{block.name}'"
        if part is None:
            raise InputError(f"{what} returned None{label}; expected an array of shape {block.shape}")
        array = _as_float_array(part, what, label)
        if len(block.shape) == 2 and array.shape == block.shape[::-1] != block.shape and \
                _squeezed(array.shape) != _squeezed(block.shape):
            flat[block.slice] = array.T.reshape(-1)
            transposed.append(block.name)
            continue
        fitted, mismatch = fit_shape(array, block.shape, block.name)
        flat[block.slice] = np.nan if fitted is None else fitted.reshape(-1)
        if mismatch is not None:
            mismatched[block.name] = mismatch
    return ReadGradient(flat, transposed, mismatched)



@dataclass(frozen=True)
class ShapeMismatch:
    """A gradient returned in another shape than its argument's (a 2-D transpose aside).

    Attributes
    ----------
    block : str
        The argument (block) it is the gradient of.
    returned, expected : tuple of int
        Its shape, and the argument's.
    summed : tuple of int or None
        The axes summed to give it the argument's shape, when the argument
        broadcasts to what was returned (a broadcast not summed); else None.
    values : ndarray
        The gradient as returned (float64), for the diagnoses to test what
        would fix it against the other gradient.
    """

    block: str
    returned: tuple[int, ...]
    expected: tuple[int, ...]
    summed: tuple[int, ...] | None
    values: np.ndarray

    @property
    def reshaped(self) -> bool:
        """Whether it has the argument's number of entries: its values are compared in the argument's shape."""
        return self.summed is None and prod(self.returned) == prod(self.expected)

    @property
    def unusable(self) -> bool:
        """Whether no reshape or sum makes it the argument's shape (another number of entries)."""
        return self.summed is None and not self.reshaped


@dataclass(frozen=True)
class ReadGradient:
    """What a gradient function returned, flat: NaN in blocks it returned with another number of entries."""

    flat: np.ndarray
    transposed: list[str]
    mismatched: dict[str, ShapeMismatch]


def fit_shape(array: np.ndarray, shape: tuple[int, ...], name: str) -> tuple[np.ndarray | None, ShapeMismatch | None]:
    """``array`` in ``shape`` and how it was made to fit: as it is, reshaped, or summed over broadcast axes.

    Returns ``(None, mismatch)`` when it has another number of entries than
    ``shape`` and ``shape`` does not broadcast to it.
    """
    shape = tuple(shape)
    if array.shape == shape:
        return array, None
    values = np.array(array, dtype=np.float64)
    if array.size == prod(shape):
        return array.reshape(shape), ShapeMismatch(name, array.shape, shape, None, values)
    axes = broadcast_axes(shape, array.shape)
    if axes is None:
        return None, ShapeMismatch(name, array.shape, shape, None, values)
    return values.sum(axis=axes).reshape(shape), ShapeMismatch(name, array.shape, shape, axes, values)


def broadcast_axes(shape: Sequence[int], returned: Sequence[int]) -> tuple[int, ...] | None:
    """The axes of ``returned`` to sum so that it takes ``shape``, when ``shape`` broadcasts to it."""
    try:
        if np.broadcast_shapes(tuple(shape), tuple(returned)) != tuple(returned):
            return None
    except ValueError:
        return None
    extra = len(returned) - len(shape)
    return tuple(range(extra)) + tuple(extra + k for k, s in enumerate(shape) if s == 1 and returned[extra + k] != 1)


def flatten(theta: Any, shapes: Sequence[Sequence[int]] | None = None,
            names: Sequence[str] | None = None) -> tuple[Layout, np.ndarray]:
    """Describe ``theta``'s structure and copy it into one flat float vector.

    Parameters
    ----------
    theta : ndarray, dict or list/tuple of arrays, or a flat vector
        The parameters. Integer arrays are taken as float64.
    shapes : sequence of shapes, optional
        Block shapes of a flat, unrolled ``theta`` (row-major per block),
        as validated by the ``shapes`` option.
    names : sequence of str, optional
        Names of the blocks of an unrolled theta, of a list or tuple, or one
        name for a single array (default ``theta[0]``, ``theta[1]``, ...,
        or ``theta``).

    Returns
    -------
    layout : Layout
    flat : ndarray
        A copy; the caller's arrays are never touched.

    Raises
    ------
    InputError
        When theta is empty, not numeric, not finite, or does not fit ``shapes``.
    """
    if shapes is not None:
        return _flatten_unrolled(theta, shapes, names)
    container: type = tuple
    if isinstance(theta, Mapping) and names is not None:
        raise OptionError("names", "names= does not apply to a dict: its keys name its blocks")
    if isinstance(theta, Mapping):
        keys = tuple(theta)
        arrays = [_as_float_array(theta[k], "theta", f" block {k!r}") for k in keys]
        block_names = _block_names(keys)
        kind = "dict"
    elif isinstance(theta, (list, tuple)) and theta and not _is_number_list(theta):
        keys = ()
        arrays = [_as_float_array(a, "theta", f"[{i}]") for i, a in enumerate(theta)]
        fields = getattr(type(theta), "_fields", None)  # a namedtuple: its blocks are named by its fields
        block_names = list(fields) if fields else [f"theta[{i}]" for i in range(len(theta))]
        kind = "tuple" if isinstance(theta, tuple) else "list"
        container = type(theta) if fields else tuple
    else:
        array = _as_float_array(theta, "theta", "")
        (name,) = _given_names(names, ["theta"])
        layout = Layout("array", (Block(name, array.shape, 0),), shape=array.shape)
        return layout, _checked_flat([array], layout)
    if not arrays:
        raise InputError(f"theta is an empty {type(theta).__name__}: there are no parameters to check")
    block_names = _given_names(names, block_names)
    blocks, start = [], 0
    for name, array in zip(block_names, arrays):
        blocks.append(Block(name, array.shape, start))
        start += array.size
    layout = Layout(kind, tuple(blocks), keys=keys, container=container)
    return layout, _checked_flat(arrays, layout)


def _given_names(names: Sequence[str] | None, default: list[str]) -> list[str]:
    """The names the user gave the blocks, one per block, or ``default``."""
    if names is None:
        return default
    if len(names) != len(default):
        raise OptionError("names", f"names= has {len(names)} name{'s' if len(names) != 1 else ''} for "
                                   f"theta's {len(default)} block{'s' if len(default) != 1 else ''}")
    return [str(name) for name in names]


def _block_names(keys: tuple[Any, ...]) -> list[str]:
    """The blocks' names: each key as a string, refused where two keys read the same (1 and '1')."""
    seen: dict[str, Any] = {}
    for key in keys:
        name = str(key)
        if name in seen:
            raise InputError(f"theta's keys {seen[name]!r} and {key!r} both name a block {name!r}: "
                             "reports could not tell them apart; use distinct keys")
        seen[name] = key
    return list(seen)


def _flatten_unrolled(theta: Any, shapes: Sequence[Sequence[int]],
                      names: Sequence[str] | None) -> tuple[Layout, np.ndarray]:
    array = _as_float_array(theta, "theta", "")
    block_shapes = [tuple(int(d) for d in np.atleast_1d(s)) for s in shapes]
    if names is None:
        names = [f"theta[{i}]" for i in range(len(block_shapes))]
    total = sum(prod(s) for s in block_shapes)
    if array.ndim != 1 or array.size != total:
        raise InputError(
            f"shapes={block_shapes} hold {total} entries but theta has shape {array.shape} "
            f"({array.size} entries); an unrolled theta is a 1-D vector of {total}"
        )
    blocks, start = [], 0
    for name, shape in zip(names, block_shapes):
        blocks.append(Block(str(name), shape, start))
        start += prod(shape)
    layout = Layout("unrolled", tuple(blocks), shape=array.shape)
    return layout, _checked_flat([array], layout)


def _checked_flat(arrays: list[np.ndarray], layout: Layout) -> np.ndarray:
    if layout.size == 0:
        raise InputError("theta has no entries to check")
    dtype = np.result_type(*arrays)
    flat = np.concatenate([a.reshape(-1) for a in arrays]).astype(dtype, copy=False)
    bad = np.flatnonzero(~np.isfinite(flat))
    if bad.size:
        raise InputError(f"theta has {flat[bad[0]]} at {layout.entry_name(int(bad[0]))}: "
                         "gradient checks need a finite point")
    return flat


def _as_float_array(value: Any, what: str, label: str) -> np.ndarray:
    """``value`` as a float ndarray (ints become float64), or a clear error."""
    if isinstance(value, Mapping):
        raise InputError(f"{what}{label} is a {type(value).__name__}: blocks must be arrays (nested containers "
                         "are not supported; make them one flat dict of arrays)")
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{what}{label} is not an array: {exc}") from None
    if array.dtype.kind in "biu":
        return array.astype(np.float64)
    if array.dtype.kind == "c":
        raise InputError(f"{what}{label} is complex ({array.dtype}); gradwidget checks real parameters")
    if array.dtype.kind != "f":
        raise InputError(f"{what}{label} has dtype {array.dtype}; expected a float array")
    return array


def _is_number_list(value: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float, np.number)) for v in value)


def _is_arraylike_leaf(tree: Any) -> bool:
    return isinstance(tree, np.ndarray) or np.isscalar(tree)


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def random_init(shapes: Any, epsilon: float = 0.12, seed: int | np.random.Generator | None = None) -> Any:
    """Random parameters, uniform in [-epsilon, epsilon], to break symmetry.

    The initialization of the gradient-checking article: a network whose
    weights all start equal computes the same thing in every unit, and a
    gradient check at such a point can miss bugs.

    Parameters
    ----------
    shapes : shape, array, or dict / list of shapes or arrays
        One shape such as ``(10, 11)`` gives one array; a list or dict of them
        gives a list or dict of arrays. Arrays stand for their own shape (and
        float dtype), so ``random_init(theta)`` mirrors an existing ``theta``.
    epsilon : float, default 0.12
        Half-width of the interval.
    seed : int or numpy.random.Generator, optional
        Makes the draw repeatable (a Generator is drawn from and advanced).

    Returns
    -------
    ndarray, list or dict of ndarray

    Examples
    --------
    >>> import gradwidget as gw
    >>> T1, T2, T3 = gw.random_init([(10, 11), (10, 11), (1, 11)], seed=0)
    >>> T3.shape, bool(abs(T1).max() <= 0.12)
    ((1, 11), True)
    """
    if not epsilon > 0:
        raise InputError(f"epsilon must be positive, got {epsilon}")
    rng = np.random.default_rng(seed)

    def draw(spec: Any) -> Any:
        if isinstance(spec, np.ndarray):
            dtype = spec.dtype if spec.dtype.kind == "f" else np.float64
            return np.asarray(rng.random(spec.shape) * 2 * epsilon - epsilon).astype(dtype)
        if isinstance(spec, (int, np.integer)) or (
            isinstance(spec, (tuple, list)) and all(isinstance(d, (int, np.integer)) for d in spec)
        ):
            return rng.random(spec) * 2 * epsilon - epsilon
        if isinstance(spec, Mapping):
            return {k: draw(v) for k, v in spec.items()}
        if isinstance(spec, (list, tuple)):
            return type(spec)(draw(s) for s in spec)
        raise InputError(f"random_init takes shapes or arrays, got {type(spec).__name__}")

    return draw(shapes)
