"""A progress bar for long checks, shown only when it helps, phase after phase.

tqdm is imported only when a bar is shown; ``tqdm.auto`` draws a widget in a
notebook and text in a terminal. A callable instead of a bar gets
``(done, total)`` at the start of every phase and after every chunk of work;
raising KeyboardInterrupt there stops the check as Ctrl-C does (the panel's
Cancel button).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Progress"]

SHOW_AFTER = 1.0  # seconds a phase is expected to take before a bar is worth it


class Progress:
    """Counts the work done in the current phase; shows a bar when asked to, or when the phase looks long.

    Parameters
    ----------
    show : bool, None or callable
        True: always; False: never; None: once a phase is expected to take
        more than about a second; a callable: called with ``(done, total)``
        instead of a bar.
    """

    def __init__(self, show: bool | Callable[[int, int], None] | None) -> None:
        self.callback = show if callable(show) else None
        self.show = None if self.callback else show
        self.total, self.done, self.description = 0, 0, ""
        self.started = time.perf_counter()
        self.bar: Any = None

    def phase(self, total: int, description: str) -> None:
        """Start a phase of ``total`` units of work (entries, probes)."""
        self.close()
        self.total, self.done, self.description = total, 0, description
        self.started = time.perf_counter()
        if self.callback is not None:
            self.callback(0, total)
        elif self.show:
            self._open()

    def update(self, count: int) -> None:
        """Record ``count`` more units of the phase done."""
        self.done += count
        if self.callback is not None:
            self.callback(self.done, self.total)
            return
        if self.bar is None and self.show is None and 0 < self.done < self.total:
            expected = (time.perf_counter() - self.started) / self.done * self.total
            if expected > SHOW_AFTER:
                self._open()  # with what is done so far, this update's count included
                return
        if self.bar is not None:
            self.bar.update(count)

    def close(self) -> None:
        """Remove the bar, finished or not (tqdm's notebook bar would stay, red, after an interrupt)."""
        if self.bar is not None:
            self.bar.total = self.bar.n
            self.bar.close()
            self.bar = None

    def _open(self) -> None:
        from tqdm.auto import tqdm

        if sys.platform == "emscripten":
            tqdm.monitor_interval = 0  # its monitor is a thread, and Pyodide (JupyterLite) has none
        self.bar = tqdm(total=self.total, desc=f"gradcheck: {self.description}", leave=False)
        self.bar.update(self.done)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
