"""Where submissions are checked: each problem's arguments at check points drawn from a seed.

A submission's hidden points come from HMAC-SHA256(secret, assignment name
and submission id): the instructor can draw them again, a student cannot
know them, and two students never share them, so answers copied or
hard-coded from anywhere else miss. Public points come from the assignment's
name alone: anyone with the spec draws the same ones, for self-checks.

At a check point, a problem's drawn and integer arguments come from the
point's own generator (``[seed, problem, point]``), which goes on to draw the
upstream gradient of a layer or a VJP; a parameter vector's rows come from
one generator of the seed, one row per point.

One more point, drawn from the secret alone, is shared by the whole class
and never scored: where two submissions' wrong answers agree bit for bit,
they were likely copied (`gradwidget.grading._copies`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

import numpy as np

from .._params import random_init
from ._problems import Argument, Problem
from ._spec import Spec, SpecError

__all__ = ["check_points", "hidden_seed", "public_seed", "read_secret", "shared_seed"]


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


def shared_seed(spec: Spec, secret: bytes) -> int:
    """The seed of the one unscored check point the whole class shares (where copied wrong answers agree).

    No submission's hidden points come from it: ids hold no NUL character.
    """
    return hidden_seed(spec, "\0shared", secret)


def public_seed(spec: Spec) -> int:
    """The seed of the assignment's public check points (anyone with the spec has it)."""
    digest = hashlib.sha256(f"gradwidget public points\0{spec.name}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def check_points(problem: Problem, index: int, seed: int, count: int
                 ) -> list[tuple[list[Any], np.random.Generator]]:
    """The arguments of problem number ``index`` at ``count`` check points, each with the generator that goes on.

    A parameter vector's value is its flat row (`Argument.passed` gives the
    functions its structure).
    """
    rows = {a.name: _parameter_rows(a, seed, count) for a in problem.arguments if a.kind == "parameters"}
    points = []
    for k in range(count):
        rng = np.random.default_rng([seed, index, k])
        points.append(([rows[a.name][k] if a.name in rows else _draw(a, rng) for a in problem.arguments], rng))
    return points


def _draw(argument: Argument, rng: np.random.Generator) -> Any:
    """One argument at a point: drawn and integer arrays fresh from ``rng``, literals and data as given."""
    if argument.kind == "drawn":
        if argument.distribution == "normal":
            return np.asarray(rng.normal(0.0, argument.scale, argument.shape))
        return np.asarray(rng.uniform(-argument.scale, argument.scale, argument.shape))
    if argument.kind == "integers":
        return np.asarray(rng.integers(argument.low, argument.high, argument.shape))
    return json.loads(json.dumps(argument.value)) if argument.kind == "value" else argument.value.copy()


def _parameter_rows(argument: Argument, seed: int, count: int) -> np.ndarray:
    """A parameter vector at each point, one flat row per point, all from one generator of the seed."""
    rng = np.random.default_rng(seed)
    shapes = [shape for _, shape in argument.blocks]
    size = sum(int(np.prod(shape)) for shape in shapes)
    if argument.distribution == "normal":
        return rng.normal(0.0, argument.scale, (count, size))
    rows = [np.concatenate([block.ravel() for block in random_init(shapes, argument.scale, seed=rng)])
            for _ in range(count)]
    return np.array(rows).reshape(count, size)
