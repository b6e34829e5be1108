"""Calling the user's J: serially, as a batch, or on an executor's workers.

Every check asks for J at points near theta in two shapes: one entry moved
(`Evaluator.along`, the hot loop of a full check) or the whole vector moved
along a direction (`Evaluator.shifted`, for directional probes). The serial
evaluator moves entries of a private work vector in place and calls J on
views of it, so no parameter tree is copied per call. J never sees the
caller's arrays; if J is caught changing its argument, the evaluator hands
it a fresh copy on every call instead. `BatchEvaluator` (``vectorized=True``)
stacks the points as rows and calls J once per chunk of rows;
`ExecutorEvaluator` sends chunks of work to a `concurrent.futures.Executor`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, Protocol

import numpy as np

from ._options import InputError
from ._params import Layout

__all__ = ["BatchEvaluator", "Evaluator", "ExecutorEvaluator", "Moves", "Stopped", "call_with_copy",
           "make_evaluator", "note_exception", "scalar_cost"]

BATCH_BYTES = 64 * 2 ** 20  # rows of one batched call of J, at most
TASKS_PER_WORKER = 8  # tasks per worker and chunk: small tasks leave little idle time at the end


def scalar_cost(value: Any, *, allow_complex: bool = False) -> float | complex:
    """J's return value as a Python number, or a clear error."""
    if type(value) is float:
        return value
    if isinstance(value, (np.floating, int, np.integer)):
        return float(value)
    if isinstance(value, tuple):
        raise InputError(f"J must return a scalar cost; it returned a tuple of {len(value)} "
                        f"(if J returns (cost, grad), pass grad=None)")
    array = np.asarray(value)
    if array.dtype.kind == "O" and array.ndim == 0:  # a framework's number: its item() or __float__ says it
        item = getattr(value, "item", None)
        with contextlib.suppress(TypeError, ValueError):  # not a number after all: the error below says so
            array = np.asarray(float(item() if callable(item) else value))
    if array.size != 1 or array.dtype.kind not in "biufc":
        what = f"an array of shape {array.shape}" if array.dtype.kind in "biufc" else f"a {type(value).__name__}"
        raise InputError(f"J must return a scalar cost; it returned {what}")
    number = array.reshape(()).item()
    if isinstance(number, complex) and not allow_complex:
        raise InputError("J returned a complex cost; expected a real number")
    return number


class Moves(Protocol):
    """Whole-vector moves of theta, made one at a time (see `gradwidget._directions.Directions`)."""

    def __len__(self) -> int: ...

    def __getitem__(self, k: int) -> np.ndarray: ...

    def part(self, which: slice) -> Moves: ...


class Stopped(KeyboardInterrupt):
    """The check stopped before its end for a reason other than Ctrl-C (a worker died); ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


NOTE = "gradwidget: "


def note_exception(exc: BaseException, note: str) -> None:
    """Attach ``note`` to ``exc`` so its traceback says where it happened (once: recursion adds no more)."""
    notes = getattr(exc, "__notes__", None) or [str(a) for a in exc.args[1:2]]
    if any(str(n).startswith(NOTE) for n in notes):
        return
    if hasattr(exc, "add_note"):
        exc.add_note(NOTE + note)
    else:  # Python 3.10: no notes; extend the message instead
        exc.args = (*exc.args[:1], NOTE + note, *exc.args[1:]) if exc.args else (NOTE + note,)


def call_with_copy(fn: Callable[[Any], Any], layout: Layout, point: np.ndarray,
                   name: str) -> tuple[Any, np.ndarray]:
    """Call ``fn`` on a private copy of ``point``.

    Returns what ``fn`` returned and the flat positions it changed in place.
    """
    copy = point.copy()
    try:
        result = fn(layout.views(copy))
    except Exception as exc:
        note_exception(exc, f"raised by {name} at the check point")
        raise
    return result, np.flatnonzero(copy != point)


def make_evaluator(J: Callable[[Any], Any], layout: Layout, point: np.ndarray, *, pair: bool,
                   dtype: Any = None, vectorized: bool = False, executor: Any = None) -> Evaluator:
    """The evaluator for the options of `gradwidget.check` (validated: not both vectorized and executor)."""
    if vectorized:
        return BatchEvaluator(J, layout, point, pair=pair, dtype=dtype)
    if executor is not None:
        return ExecutorEvaluator(J, layout, point, pair=pair, dtype=dtype, executor=executor)
    return Evaluator(J, layout, point, pair=pair, dtype=dtype)


class Evaluator:
    """Evaluates J one point at a time, counting the calls.

    Parameters
    ----------
    J : callable
        The cost.
    layout : Layout
        How the flat vector becomes J's argument.
    point : ndarray
        The flat check point (copied).
    pair : bool
        J returns ``(cost, grad)``; only the cost is used here.
    dtype : dtype, optional
        Working dtype (complex for the complex-step method).
    """

    chunk_seconds = 0.2  # how long one chunk of a check's work should take
    first_chunk = 8  # entries in the first chunk, whose time sizes the others
    name = "J"  # what notes on J's exceptions call it (the forward's name, for a layer)

    def __init__(self, J: Callable[[Any], Any], layout: Layout, point: np.ndarray, *,
                 pair: bool = False, dtype: Any = None) -> None:
        self.J = J
        self.layout = layout
        self.pair = pair
        self.work = np.array(point, dtype=dtype or point.dtype)
        self.point = np.asarray(point, dtype=self.work.dtype)  # never written to: theta itself when it can be
        self.allow_complex = self.work.dtype.kind == "c"
        self.args = layout.views(self.work)
        self.calls = 0
        self.reached = 0
        self.fresh_copies = False

    def cost(self, value: Any) -> float | complex:
        """The cost out of what J returned for one point."""
        if self.pair:
            if not (isinstance(value, (tuple, list)) and len(value) == 2):
                raise InputError(
                    f"with grad=None, J must return (cost, grad); it returned a {type(value).__name__}"
                )
            value = value[0]
        return scalar_cost(value, allow_complex=self.allow_complex)

    def at(self, point: np.ndarray, times: int = 1) -> tuple[list[Any], np.ndarray]:
        """J's return values at ``point`` (as for one point), ``times`` over, and the positions J changed."""
        values, changed = [], []
        for _ in range(times):
            self.calls += 1
            value, moved = call_with_copy(self.J, self.layout, point, self.name)
            values.append(value)
            changed.append(moved)
        return values, np.unique(np.concatenate(changed))

    def cost_again(self, point: np.ndarray) -> float:
        """J's latest cost at ``point`` (the check point): a J whose state or noise shows only later."""
        return float(np.real(self.cost(self.at(point)[0][0])))

    def along(self, positions: np.ndarray, deltas: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Fill ``out[k]`` with J(theta + deltas[k] * e[positions[k]]).

        On an interrupt, ``reached`` says how many of ``out`` were filled.
        """
        with np.errstate(all="ignore"):  # NaN one step outside J's domain is handled, not news
            return self._along(positions, deltas, out)

    def _along(self, positions: np.ndarray, deltas: np.ndarray, out: np.ndarray) -> np.ndarray:
        work, J, layout, cost = self.work, self.J, self.layout, self.cost
        plain = not self.pair and not self.allow_complex
        k = 0
        try:
            for k, (i, delta) in enumerate(zip(positions.tolist(), deltas.tolist())):
                original = work[i]
                work[i] = original + delta
                try:
                    args = layout.views(work.copy()) if self.fresh_copies else layout.rebuild(self.args)
                    value = J(args)
                except Exception as exc:
                    note_exception(exc, f"raised by {self.name} with {layout.entry_name(i)} "
                                        f"moved by {delta:+.3g} from {original:.6g}")
                    raise
                finally:
                    work[i] = original
                    self.calls += 1
                out[k] = value if plain and isinstance(value, float) else cost(value)  # float: no checks needed
        except KeyboardInterrupt:
            self.reached = k  # out[:k] is complete
            raise
        return out

    moves_at_once = 1
    """Moves worth evaluating together (a batch, one per worker)."""

    def shifted(self, moves: Moves, out: np.ndarray) -> np.ndarray:
        """Fill ``out[k]`` with J(theta + moves[k]), one move in memory at a time."""
        with np.errstate(all="ignore"):
            for k in range(len(moves)):
                point = moves[k].astype(self.work.dtype, copy=False)  # complex for the complex step
                point += self.point
                out[k] = np.real(self.cost(self._call(point, f"along direction {k}")))
                del point
        return out

    def _call(self, point: np.ndarray, where: str) -> Any:
        self.calls += 1
        try:
            return self.J(self.layout.views(point))
        except Exception as exc:
            note_exception(exc, f"raised by {self.name} with theta moved {where}")
            raise

    def drifted(self) -> np.ndarray:
        """Positions of the work vector that J changed for good."""
        return np.flatnonzero(self.work != self.point)


class BatchEvaluator(Evaluator):
    """A vectorized J: each array gets a leading batch axis; J returns one cost per row."""

    chunk_seconds = 0.5
    latest_at_point: float | None = None
    """J at the check point, from the row that ends the latest batch (None before the first batch)."""

    @property
    def first_chunk(self) -> int:  # type: ignore[override]
        return max(8, self._rows_per_call() // 2)  # a full batch: J's fixed cost is paid once

    def at(self, point: np.ndarray, times: int = 1) -> tuple[list[Any], np.ndarray]:
        """As `Evaluator.at`, in one call: ``times`` rows of ``point``."""
        self.calls += 1
        batch = np.repeat(point[None, :], times, axis=0)
        try:
            value = self.J(self.layout.batch_views(batch))
        except Exception as exc:
            note_exception(exc, "raised by J (vectorized) at the check point")
            raise
        if self.pair:
            costs, grads = value
            costs = self._costs(costs, times)
            values = [(costs[row], self.layout.row_of_batch(grads, row)) for row in range(times)]
        else:
            values = list(self._costs(value, times))
        return values, np.flatnonzero((batch != point).any(axis=0))

    def cost_again(self, point: np.ndarray) -> float:
        """The cost of the check point's row that ends every batch (J called again only when no batch ran)."""
        return super().cost_again(point) if self.latest_at_point is None else self.latest_at_point

    def along(self, positions: np.ndarray, deltas: np.ndarray, out: np.ndarray) -> np.ndarray:
        rows_per_call = self._rows_per_call() - 1  # and the check point's row
        self.reached = 0
        for start in range(0, positions.size, rows_per_call):
            part = slice(start, start + rows_per_call)
            rows = np.repeat(self.point[None, :], positions[part].size + 1, axis=0)
            rows[np.arange(rows.shape[0] - 1), positions[part]] += deltas[part].astype(rows.dtype)
            out[part] = self._batch(rows)
            self.reached = min(start + rows_per_call, positions.size)
        return out

    @property
    def moves_at_once(self) -> int:  # type: ignore[override]
        return max(1, self._rows_per_call() // 2)  # each move is probed both ways

    def shifted(self, moves: Moves, out: np.ndarray) -> np.ndarray:
        rows_per_call = self._rows_per_call() - 1  # and the check point's row
        for start in range(0, len(moves), rows_per_call):
            rows = np.empty((min(rows_per_call, len(moves) - start) + 1, self.point.size), self.work.dtype)
            for k, row in enumerate(rows[:-1]):
                np.add(self.point, moves[start + k], out=row, casting="unsafe")
            rows[-1] = self.point
            out[start:start + rows.shape[0] - 1] = self._batch(rows)
        return out

    def _rows_per_call(self) -> int:
        return max(2, BATCH_BYTES // (self.point.size * self.work.itemsize))

    def _batch(self, rows: np.ndarray) -> np.ndarray:
        """J's costs on ``rows`` but the last, which is the check point's (kept as `latest_at_point`)."""
        self.calls += 1
        with np.errstate(all="ignore"):
            try:
                value = self.J(self.layout.batch_views(rows))
            except Exception as exc:
                note_exception(exc, f"raised by J (vectorized) on a batch of {rows.shape[0]} points")
                raise
        costs = self._costs(value[0] if self.pair else value, rows.shape[0])
        self.latest_at_point = float(np.real(costs[-1]))
        return costs[:-1]

    def _costs(self, value: Any, rows: int) -> np.ndarray:
        costs = np.asarray(value)
        if costs.size != rows or costs.ndim == 0 or costs.dtype.kind not in "biufc":
            raise InputError(f"a vectorized J must return one cost per row: for a batch of {rows} "
                            f"points it returned shape {costs.shape}")
        return costs.reshape(rows)


class ExecutorEvaluator(Evaluator):
    """Sends chunks of evaluations to a `concurrent.futures.Executor`.

    ``executor`` may also be a ``dask.distributed.Client`` (its executor
    interface is used). J must be picklable by the executor.
    """

    chunk_seconds = 1.0

    def __init__(self, J: Callable[[Any], Any], layout: Layout, point: np.ndarray, *,
                 pair: bool = False, dtype: Any = None, executor: Any) -> None:
        super().__init__(J, layout, point, pair=pair, dtype=dtype)
        if not isinstance(executor, Executor) and hasattr(executor, "get_executor"):
            executor = executor.get_executor()  # dask.distributed.Client
        self.executor = executor
        self.workers = _worker_count(executor)
        self.first_chunk = 2 * self.workers * TASKS_PER_WORKER  # every worker busy from the start
        self.moves_at_once = self.workers

    def along(self, positions: np.ndarray, deltas: np.ndarray, out: np.ndarray) -> np.ndarray:
        tasks = self._split(positions.size)
        futures = [self.executor.submit(_entries_task, self.J, self.layout, self.point, self.pair,
                                        positions[part], deltas[part]) for part in tasks]
        return self._gather(futures, tasks, out, lambda part: "with one of " + ", ".join(
            dict.fromkeys(self.layout.entry_name(int(i)) for i in positions[part][:4])) + " moved")

    def shifted(self, moves: Moves, out: np.ndarray) -> np.ndarray:
        tasks = self._split(len(moves))
        futures = [self.executor.submit(_shifts_task, self.J, self.layout, self.point, self.pair,
                                        moves.part(part)) for part in tasks]
        return self._gather(futures, tasks, out, lambda part: f"along directions {part.start} to {part.stop - 1}")

    def _split(self, count: int) -> list[slice]:
        size = max(1, -(-count // (self.workers * TASKS_PER_WORKER)))
        return [slice(start, min(start + size, count)) for start in range(0, count, size)]

    def _gather(self, futures: list[Future[Any]], tasks: list[slice], out: np.ndarray,
                describe: Callable[[slice], str]) -> np.ndarray:
        done = np.zeros(len(tasks), bool)
        try:
            for k, (future, part) in enumerate(zip(futures, tasks)):
                try:
                    out[part] = _result(future)
                except Exception as exc:
                    if _worker_died(exc):
                        raise Stopped(f"a worker died ({type(exc).__name__}) while evaluating J {describe(part)}; "
                                      "what was measured before is kept") from exc
                    raise
                done[k] = True
                self.calls += part.stop - part.start
        except BaseException:
            for future in futures:
                future.cancel()
            self.reached = tasks[int(np.argmin(done))].start if not done.all() else tasks[-1].stop
            raise
        return out


def _entries_task(J: Callable[[Any], Any], layout: Layout, point: np.ndarray, pair: bool,
                  positions: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """One worker's share of `Evaluator.along`."""
    evaluator = Evaluator(J, layout, point, pair=pair)
    return evaluator.along(positions, deltas, np.full(positions.size, np.nan))


def _shifts_task(J: Callable[[Any], Any], layout: Layout, point: np.ndarray, pair: bool,
                 moves: Moves) -> np.ndarray:
    """One worker's share of `Evaluator.shifted`."""
    evaluator = Evaluator(J, layout, point, pair=pair)
    return evaluator.shifted(moves, np.full(len(moves), np.nan))


def _result(future: Future[Any]) -> Any:
    try:
        return future.result()
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        if "pickle" not in str(exc).lower():
            raise
        raise InputError(
            "J cannot be sent to the executor's worker processes because it cannot be pickled "
            f"({exc}): define J at module level (not in a notebook cell or as a lambda or closure), "
            "or use an executor that pickles with cloudpickle (dask.distributed, ipyparallel)."
        ) from None


def _worker_died(exc: BaseException) -> bool:
    """Whether ``exc`` says the executor lost a worker (a process pool broken, dask's KilledWorker)."""
    from concurrent.futures import BrokenExecutor

    return isinstance(exc, BrokenExecutor) or type(exc).__name__ == "KilledWorker"


def _worker_count(executor: Any) -> int:
    for attribute in ("_max_workers", "max_workers"):
        count = getattr(executor, attribute, None)
        if isinstance(count, int) and count > 0:
            return count
    client = getattr(executor, "_client", None)  # dask.distributed's ClientExecutor
    if client is not None and hasattr(client, "nthreads"):
        return max(1, sum(client.nthreads().values()))
    return os.cpu_count() or 1
