"""A progress bar for long checks, shown only when it helps.

tqdm is imported only when a bar is shown; ``tqdm.auto`` draws a widget in a
notebook and text in a terminal. A callable instead of a bar gets
``(done, total)`` after every chunk; raising KeyboardInterrupt there stops
the check as Ctrl-C does (the panel's Cancel button).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Progress"]

SHOW_AFTER = 1.0  # seconds a check is expected to take before a bar is worth it


class Progress:
    """Counts done entries; shows a bar when asked to, or when the work looks long.

    Parameters
    ----------
    total : int
        Units of work (entries).
    show : bool, None or callable
        True: always; False: never; None: once the expected total time
        exceeds about a second; a callable: called with ``(done, total)``
        instead of a bar.
    description : str
        The bar's label.
    """

    def __init__(self, total: int, show: bool | Callable[[int, int], None] | None,
                 description: str = "gradcheck") -> None:
        self.callback = show if callable(show) else None
        self.show = None if self.callback else show
        self.total, self.description = total, description
        self.done = 0
        self.bar: Any = None
        if self.show:
            self._open()

    def update(self, count: int, elapsed: float) -> None:
        """Record ``count`` more units done, ``elapsed`` seconds since the start."""
        self.done += count
        if self.callback is not None:
            self.callback(self.done, self.total)
            return
        if self.bar is None and self.show is None and self.done:
            expected = elapsed / self.done * self.total
            if expected > SHOW_AFTER and self.done < self.total:
                self._open()
        if self.bar is not None:
            self.bar.update(count)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _open(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, desc=self.description, unit="entry", leave=False)
        self.bar.update(self.done)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
