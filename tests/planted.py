"""Planted classes for copy detection: independent solutions, disguised copies, and look-alike bugs.

The classic course's cost and gradient written four ways (as four students
would), each right or with a bug: a common one (the bias column
regularized, the data term divided twice by m) or an odd one of that
student's own. Copies are another student's file renamed, reformatted and
commented (`disguise`), or rewritten so that only its answers are the same
(`restructured`). `PAIRS` are the copies; every other pair, look-alikes
included, is independent.
"""

from __future__ import annotations

import re

from course import COURSE, LAYERS_COURSE, solution_cells, with_layer_bug

SETUP, WRAPPERS = solution_cells(COURSE)[0], solution_cells(COURSE)[3]

STYLES = {
    "loop": solution_cells(COURSE)[1:3],
    "unrolled": ['''
def cost(theta, X, y, lam):
    T1, T2, T3 = unroll(theta)
    m = X.shape[0]
    a1 = np.c_[np.ones(m), X]
    a2 = np.c_[np.ones(m), sigmoid(a1.dot(T1.T))]
    a3 = np.c_[np.ones(m), sigmoid(a2.dot(T2.T))]
    h = sigmoid(a3.dot(T3.T)).flatten()
    data = -(y.dot(np.log(h)) + (1 - y).dot(np.log(1 - h))) / m
    reg = (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2) + np.sum(T3[:, 1:] ** 2)) * lam / (2 * m)
    return data + reg
''', '''
def gradient(theta, X, y, lam):
    T1, T2, T3 = unroll(theta)
    m = X.shape[0]
    a1 = np.c_[np.ones(m), X]
    a2 = np.c_[np.ones(m), sigmoid(a1.dot(T1.T))]
    a3 = np.c_[np.ones(m), sigmoid(a2.dot(T2.T))]
    h = sigmoid(a3.dot(T3.T))
    d4 = h - y[:, None]
    d3 = d4.dot(T3)[:, 1:] * a3[:, 1:] * (1 - a3[:, 1:])
    d2 = d3.dot(T2)[:, 1:] * a2[:, 1:] * (1 - a2[:, 1:])
    g1 = d2.T.dot(a1) / m
    g2 = d3.T.dot(a2) / m
    g3 = d4.T.dot(a3) / m
    g1[:, 1:] += lam / m * T1[:, 1:]
    g2[:, 1:] += lam / m * T2[:, 1:]
    g3[:, 1:] += lam / m * T3[:, 1:]
    return np.concatenate([g1.ravel(), g2.ravel(), g3.ravel()])
'''],
    "indexed": ['''
def with_bias(a):
    return np.insert(a, 0, 1.0, axis=1)


def activations(weights, X):
    acts = [with_bias(X)]
    for i in range(len(weights)):
        out = sigmoid(np.matmul(acts[i], np.transpose(weights[i])))
        acts.append(with_bias(out) if i < len(weights) - 1 else out)
    return acts


def cost(theta, X, y, lam):
    weights = unroll(theta)
    acts = activations(weights, X)
    p = acts[-1][:, 0]
    n = len(X)
    total = 0.0
    for i in range(n):
        total -= y[i] * np.log(p[i]) + (1 - y[i]) * np.log(1 - p[i])
    squares = 0.0
    for W in weights:
        squares += np.sum(np.square(W[:, 1:]))
    return total * (1 / n) + lam * squares * (1 / (2 * n))
''', '''
def gradient(theta, X, y, lam):
    weights = unroll(theta)
    acts = activations(weights, X)
    n = len(X)
    err = acts[-1] - np.reshape(y, (n, 1))
    out = [None, None, None]
    for i in (2, 1, 0):
        out[i] = np.matmul(np.transpose(err), acts[i]) * (1 / n)
        reg = weights[i] * (lam / n)
        reg[:, 0] = 0
        out[i] = out[i] + reg
        if i > 0:
            err = np.matmul(err, weights[i])[:, 1:] * acts[i][:, 1:] * (1 - acts[i][:, 1:])
    return np.hstack([np.ravel(o) for o in out])
'''],
    "einsum": ['''
def layers(Ts, X):
    a = X
    seen = []
    for T in Ts:
        a = np.concatenate([np.ones((a.shape[0], 1)), a], axis=1)
        seen.append(a)
        a = sigmoid(np.einsum("ij,kj->ik", a, T))
    return seen, a


def cost(theta, X, y, lam):
    Ts = unroll(theta)
    _, out = layers(Ts, X)
    out = out[:, 0]
    loss = np.mean(-y * np.log(out) - (1 - y) * np.log(1 - out))
    return loss + lam / 2 / len(y) * sum((T[:, 1:] ** 2).sum() for T in Ts)
''', '''
def sigmoid_slope(a):
    return a * (1 - a)


def gradient(theta, X, y, lam):
    Ts = unroll(theta)
    seen, out = layers(Ts, X)
    count = len(y)
    back = out - y.reshape(count, 1)
    parts = []
    for k in range(len(Ts) - 1, -1, -1):
        G = np.einsum("ik,ij->kj", back, seen[k]) / count
        G[:, 1:] = G[:, 1:] + lam * Ts[k][:, 1:] / count
        parts = [G.ravel()] + parts
        back = np.einsum("ik,kj->ij", back, Ts[k])[:, 1:] * sigmoid_slope(seen[k][:, 1:])
    return np.concatenate(parts)
'''],
}

# Each bug as the edit that makes it in each style's gradient cell.
BUGS = {
    "bias": {  # common: the bias column regularized too
        "loop": ("G[:, 1:] += lam / m * Theta[:, 1:]", "G += lam / m * Theta"),
        "unrolled": ("g1[:, 1:] += lam / m * T1[:, 1:]", "g1 += lam / m * T1"),
        "indexed": ("        reg[:, 0] = 0\n", ""),
        "einsum": ("G[:, 1:] = G[:, 1:] + lam * Ts[k][:, 1:] / count", "G = G + lam * Ts[k] / count"),
    },
    "twice": {  # common: the data term divided by m once more
        "loop": ("G = delta.T @ a / m", "G = delta.T @ a / m / m"),
        "unrolled": ("g1 = d2.T.dot(a1) / m", "g1 = d2.T.dot(a1) / m / m"),
        "indexed": ("* (1 / n)\n        reg", "* (1 / n) / n\n        reg"),
        "einsum": ('G = np.einsum("ik,ij->kj", back, seen[k]) / count',
                   'G = np.einsum("ik,ij->kj", back, seen[k]) / count / count'),
    },
    "odd": {  # a student's own slip: the derivative of the sigmoid taken at a shifted slice
        "loop": ("* a[:, 1:] * (1 - a[:, 1:])", "* a[:, 1:] * (1.1 - a[:, 1:])"),
        "unrolled": ("d2 = d3.dot(T2)[:, 1:] * a2[:, 1:] * (1 - a2[:, 1:])",
                     "d2 = d3.dot(T2)[:, 1:] * a2[:, 1:] * (1 - a2[:, 1:]) * 0.93 + 0.001"),
        "indexed": ("* acts[i][:, 1:] * (1 - acts[i][:, 1:])", "* acts[i][:, 1:] * (1 - acts[i][:, 1:] ** 1.5)"),
        "einsum": ("return a * (1 - a)", "return a * (1 - a) + a ** 3 / 7"),
    },
}


# What makes two students' code their own beyond the style: a line each adds to cost and gradient, and the way
# each writes a division or the sigmoid's slope (the same values, rounded otherwise).
HABITS = (("", ()),
          ("    theta = np.asarray(theta, dtype=float)\n",
           ((r"/ (m|count)\b", r"* (1 / \1)"), (r"\* \(1 / n\)", "/ n"))),
          ("    X, y = np.asarray(X), np.asarray(y)\n",
           ((r"\* (\w+(?:\[i\])?\[:, 1:\]) \* \(1 - \1\)", r"* (\1 - \1 ** 2)"),
            (r"return a \* \(1 - a\)$", "return a - a * a"))))


def submission(style: str, bug: str | None = None, habit: int = 0) -> list[str]:
    """The cells of a student who wrote ``style`` with one of `HABITS`, with ``bug`` (or right)."""
    setup_cost, gradient = STYLES[style]
    if bug is not None:
        old, new = BUGS[bug][style]
        assert old in gradient, (style, bug)
        gradient = gradient.replace(old, new)
    line, rewrites = HABITS[habit]
    own = []
    for cell in (setup_cost, gradient):
        cell = re.sub(r"(def (?:cost|gradient)\(theta, X, y, lam\):\n)", lambda m: m.group(1) + line, cell)
        for old, new in rewrites:
            cell = re.sub(old, new, cell, flags=re.MULTILINE)
        own.append(cell)
    return [SETUP, *own, WRAPPERS]


def disguise(cells: list[str], salt: str) -> list[str]:
    """Another student's cells renamed, reformatted and commented: the same code to the grader's eye."""
    def rename(text: str) -> str:
        for name in ("delta", "grads", "inputs", "acts", "weights", "err", "out", "back", "parts", "seen", "count",
                     "d2", "d3", "d4", "g1", "g2", "g3", "a1", "a2", "a3", "reg", "data", "G", "h", "m", "n"):
            text = re.sub(rf"(?<![\w.]){name}(?!\w)", f"{name}_{salt}", text)
        return text

    def reformat(text: str) -> str:
        lines = []
        for k, line in enumerate(text.splitlines()):
            lines.append(line.replace(" * ", "*").replace(", ", ",  ") if k % 2 else line)
            if line.strip().startswith(("for ", "return")):
                lines.append(f"{' ' * (len(line) - len(line.lstrip()))}# {salt}: see lecture 4")
        return "\n".join(lines) + "\n"

    return [cells[0], *(reformat(rename(cell)) for cell in cells[1:3]), cells[3]]


def restructured(cells: list[str]) -> list[str]:
    """A copy rewritten statement by statement (other syntax, same arithmetic): only its answers betray it."""
    gradient = (cells[2].replace("np.matmul(", "np.dot(").replace("out[i] = out[i] + reg", "out[i] += reg")
                .replace("for i in (2, 1, 0):", "for i in [2, 1, 0]:"))
    return [cells[0], cells[1].replace("total -= ", "total = total - "), gradient, cells[3]]


def planted_class() -> tuple[dict[str, list[str]], set[frozenset[str]]]:
    """The class (id -> cells) and its copied pairs.

    Twelve students write their own code: each style thrice, with another
    habit each time, right or with a common or an odd bug, so that the same
    common bug is made on its own in the same style and in others. Four
    more copy one of them.
    """
    bugs = [None, "bias", "twice", None, "twice", "bias", "odd", "bias", "twice", "odd", None, "bias"]
    members = {}
    for k, (style, habit) in enumerate((style, habit) for habit in range(3) for style in STYLES):
        members[f"{style}-{habit}-{bugs[k] or 'right'}"] = submission(style, bugs[k], habit)
    members["ursula"] = disguise(members["unrolled-0-bias"], "u")  # a common bug copied
    members["lars"] = disguise(members["indexed-0-twice"], "l")  # a common bug copied, renamed
    members["ines"] = restructured(members["indexed-1-odd"])  # an odd bug copied, then rewritten
    members["bea"] = disguise(members["einsum-0-right"], "b")  # a right answer copied
    pairs = {frozenset(p) for p in [("unrolled-0-bias", "ursula"), ("indexed-0-twice", "lars"),
                                    ("indexed-1-odd", "ines"), ("einsum-0-right", "bea")]}
    return members, pairs


# The layers course written by other students: their own first line in every function.
LAYER_HABITS = ("assert {0} is not None", "{0} = {0}", "if {0} is None:\n        raise ValueError", "pass",
                "assert {0} is not None, 'missing'")


def layer_habit(cells: list[str], k: int) -> list[str]:
    """The layers cells as a student with habit ``k`` writes them."""
    def first_line(match: re.Match[str]) -> str:
        return f"{match.group(1)}    {LAYER_HABITS[k].format(match.group(2))}\n"

    return [re.sub(r"^(def \w+\(([^,)]*)[^)]*\):\n)", first_line, cell, flags=re.MULTILINE) for cell in cells]


def planted_layers_class() -> tuple[dict[str, list[str]], set[frozenset[str]]]:
    """A layers class: a renamed copy, a common bug made twice on its own, an odd bug copied and disguised."""
    right = solution_cells(LAYERS_COURSE)
    odd = with_layer_bug("dx[x <= 0] = 0", "dx[x <= 0.5] = 0")
    common = with_layer_bug("db = np.sum(dout, axis=0)", "db = np.sum(dout, axis=1)")
    members = {"ann": right, "tess": [c.replace("cache", "saved").replace("dout", "upstream") for c in right],
               "al": layer_habit(right, 0), "cy": layer_habit(common, 1), "cid": layer_habit(common, 2),
               "oz": layer_habit(odd, 3), "otto": layer_habit(odd, 4)}
    return members, {frozenset(("ann", "tess")), frozenset(("oz", "otto"))}
