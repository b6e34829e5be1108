"""Where submissions are checked: hidden points per submission from a course secret, public points for all.

A submission's hidden points come from HMAC-SHA256(secret, assignment name
and submission id): the instructor can draw them again, a student cannot
know them, and two students never share them, so answers copied or
hard-coded from anywhere else miss. Public points come from the assignment's
name alone: anyone with the spec draws the same ones, for self-checks.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import numpy as np

from .._params import random_init
from ._spec import Spec, SpecError

__all__ = ["hidden_points", "hidden_seed", "public_points", "public_seed", "read_secret"]


def read_secret(spec: Spec) -> bytes:
    """The course secret named by ``[points] secret``; a `SpecError` says where it was looked for."""
    kind, _, where = spec.secret.partition(":")
    if kind == "env":
        text = os.environ.get(where, "")
        if not text:
            raise SpecError(f"{spec.path.name}: [points] secret = {spec.secret!r}, but the environment variable "
                            f"{where} is not set: set it to the course secret (hidden points depend on it), or "
                            "grade with --public")
        return text.encode()
    file = (spec.folder / where).resolve()
    try:
        value = file.read_bytes().strip()
    except OSError as exc:
        raise SpecError(f"{spec.path.name}: [points] secret = {spec.secret!r}: cannot read {file} "
                        f"({exc.strerror})") from None
    if not value:
        raise SpecError(f"{spec.path.name}: [points] secret = {spec.secret!r}: {file} is empty")
    return value


def hidden_seed(spec: Spec, submission: str, secret: bytes) -> int:
    """The seed of a submission's hidden check points."""
    digest = hmac.new(secret, f"{spec.name}\0{submission}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "little")


def public_seed(spec: Spec) -> int:
    """The seed of the assignment's public check points (anyone with the spec has it)."""
    digest = hashlib.sha256(f"gradwidget public points\0{spec.name}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def hidden_points(spec: Spec, submission: str, secret: bytes) -> np.ndarray:
    """The submission's hidden check points, one flat theta per row."""
    return _draw(spec, hidden_seed(spec, submission, secret), spec.hidden)


def public_points(spec: Spec) -> np.ndarray:
    """The assignment's public check points, the same for everyone, one flat theta per row."""
    return _draw(spec, public_seed(spec), spec.public)


def _draw(spec: Spec, seed: int, count: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if spec.distribution == "normal":
        return rng.normal(0.0, spec.scale, (count, spec.size))
    rows = [np.concatenate([block.ravel() for block in random_init(list(spec.shapes), spec.scale, seed=rng)])
            for _ in range(count)]
    return np.array(rows).reshape(count, spec.size)
