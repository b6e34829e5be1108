"""pytest's collection: the PyTorch and JAX front ends' doctests need their extras; JAX's tests run last."""

import importlib.util
from typing import Any

collect_ignore = [f"gradwidget/{name}.py" for name in ("torch", "jax") if importlib.util.find_spec(name) is None]


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """JAX's backend starts threads, which ``os.fork`` warns about: its tests come after the tests that fork."""
    items.sort(key=lambda item: "jax" in item.nodeid)
