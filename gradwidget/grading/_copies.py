"""Copies flagged for review: the same code up to renaming and formatting, or the same odd wrong answer.

Two signs, each read by the trusted grader and never by a submission:

- **Code.** Each function a submission defines at its top level, other than
  the template's own, is parsed and put in a canonical form: every name
  (variables, arguments, helpers, import aliases) replaced by its order of
  first use, docstrings, comments, ``print`` calls and formatting gone.
  Submissions whose own functions are all the same in that form, or that
  share one long function (`MIN_FUNCTION_NODES`), are a pair. Too little
  code of one's own (`MIN_NODES`) is not compared: two short right answers
  agree by nature.
- **A wrong answer.** Every submission is also run at one check point the
  whole class shares (never one of the scored hidden points). Two
  submissions whose derivatives there are wrong and equal to the last bit are
  a pair, unless the wrong answer is one students reach on their own: one
  the diagnoses name by a common cause (`NAMED_CAUSES`: a factor, a flipped
  sign, a transpose, a missing term...), one a larger group shares
  (`COMMON_ANSWER`), or zeros.

A flag ``copy-of:ID`` goes on both submissions of a pair, for review; it
never changes a score. In a larger group (a solution passed around) each
names three others and counts the rest: ``copy-of:+N``.
"""

from __future__ import annotations

import ast
import builtins
import copy
import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TypeVar

from ._submission import top_level_functions

__all__ = ["COMMON_ANSWER", "MIN_FUNCTION_NODES", "MIN_NODES", "NAMED_CAUSES", "canonical_forms", "code_prints",
           "copy_flags"]

MIN_NODES = 80  # syntax-tree nodes of a submission's own functions below which code is not compared
MIN_FUNCTION_NODES = 150  # one function this long, the same in two submissions, is a pair on its own
MAX_NAMED = 3  # copy-of flags named on one submission; the rest of its group counted
COMMON_ANSWER = 4  # a wrong answer shared bit for bit by this many submissions or more is a common bug
NAMED_CAUSES = frozenset({"scale", "sign", "transpose", "permutation", "missing-term", "broadcast", "swapped", "shape",
                          "recurrence", "ignores-dout", "ignores-input"})  # ("localized" says where, not why)
_BUILTINS = frozenset(dir(builtins))
_Function = TypeVar("_Function", ast.FunctionDef, ast.AsyncFunctionDef)


class _Canonical(ast.NodeTransformer):
    """Every name by its order of first use; docstrings and ``print`` calls dropped."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def rename(self, name: str) -> str:
        if name in _BUILTINS and name not in self.names:
            return name
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.rename(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg, node.annotation = self.rename(node.arg), None
        return node

    def visit_alias(self, node: ast.alias) -> ast.alias:
        node.asname = self.rename(node.asname or node.name.split(".")[0])
        return node

    def visit_Global(self, node: ast.Global) -> ast.Global:
        node.names = [self.rename(name) for name in node.names]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        return self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AsyncFunctionDef:
        return self._function(node)

    def _function(self, node: _Function) -> _Function:
        node.name, node.returns = self.rename(node.name), None
        if node.body and _is_text(node.body[0]):
            node.body = node.body[1:] or [ast.Pass()]
        self.generic_visit(node)
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.Expr | None:
        if _is_text(node) or (isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                              and node.value.func.id == "print"):
            return None
        self.generic_visit(node)
        return node


def _is_text(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
        and isinstance(statement.value.value, str)


def _canonical(function: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, int]:
    """A function's canonical form, and its size in syntax-tree nodes (the cells' own tree is left as it is)."""
    tree = _Canonical().visit(copy.deepcopy(function))
    return ast.dump(tree, annotate_fields=False, include_attributes=False), sum(1 for _ in ast.walk(tree))


def canonical_forms(cells: Sequence[str]) -> frozenset[str]:
    """The canonical forms of the functions the cells define (a template's: what no submission wrote itself)."""
    return frozenset(_canonical(f)[0] for f in top_level_functions(cells).values())


def code_prints(cells: Sequence[str], given: frozenset[str] = frozenset()) -> frozenset[str]:
    """Digests of a submission's own code in canonical form: all of it, and each of its long functions.

    ``given`` holds the template's `canonical_forms`, left out. Empty when
    there is too little code of its own to tell copying from coincidence.
    """
    own = [form for form in map(_canonical, top_level_functions(cells).values()) if form[0] not in given]
    prints = {_digest(form) for form, size in own if size >= MIN_FUNCTION_NODES}
    if sum(size for _, size in own) >= MIN_NODES:
        prints.add(_digest("\n".join(sorted(form for form, _ in own))))
    return frozenset(prints)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def copy_flags(code: Mapping[str, frozenset[str]], answers: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Submission id -> its ``copy-of:ID`` flags, from code prints and wrong answers at the shared point.

    ``answers`` holds, per submission and per problem, the digest of a wrong
    answer no common cause explains, or an empty string.
    """
    others: dict[str, set[str]] = defaultdict(set)
    by_code: dict[str, list[str]] = defaultdict(list)
    for identifier, prints in code.items():
        for digest in prints:
            by_code[digest].append(identifier)
    by_answer: dict[tuple[int, str], list[str]] = defaultdict(list)
    for identifier, digests in answers.items():
        for problem, digest in enumerate(digests):
            if digest:
                by_answer[problem, digest].append(identifier)
    groups = [*by_code.values(), *(g for g in by_answer.values() if len(g) < COMMON_ANSWER)]
    for group in groups:
        for identifier in group:
            others[identifier].update(other for other in group if other != identifier)
    return {identifier: _named(sorted(found)) for identifier, found in others.items() if found}


def _named(others: list[str]) -> tuple[str, ...]:
    """``copy-of:ID`` for each, or for the first `MAX_NAMED` and ``copy-of:+N`` for the N more (a leaked answer)."""
    if len(others) <= MAX_NAMED + 1:
        return tuple(f"copy-of:{other}" for other in others)
    return (*(f"copy-of:{other}" for other in others[:MAX_NAMED]), f"copy-of:+{len(others) - MAX_NAMED}")
