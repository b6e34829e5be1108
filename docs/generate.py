"""Write the reference pages generated from gradwidget's own declarations into the staged docs source.

``python docs/generate.py STAGE``: options.md (from the options of ``check``
and the magic's parser), spec.md (every key of the assignment spec),
diagnoses.md (every diagnosis code with an example: a check of a corpus
case, or of a layer case, that gives it, its message and a heatmap of its
block), layout.md (every module, layer by layer, from the architecture
test's declaration and each module's own docstring).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import gradwidget as gw  # noqa: E402
from gradwidget._options import OPTIONS  # noqa: E402
from gradwidget.display._plot import block_png  # noqa: E402
from gradwidget.grading import SPEC_KEYS  # noqa: E402


def cell(text: object) -> str:
    """A Markdown table cell: no pipes, no newlines."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def options_page() -> str:
    from gradwidget._magic import GradCheckMagics

    rows = "\n".join(f"| `{o.name}` | `{o.default!r}` | {cell(o.accepts)} | {cell(o.help)} |" for o in OPTIONS)
    usage = GradCheckMagics.gradcheck.parser.format_help()  # type: ignore[attr-defined]
    return f"""# Options

## `gradwidget.check`

Every option is keyword-only; a value an option does not accept raises `gradwidget.OptionError` (a
`ValueError` naming the option and what it accepts).

| option | default | accepts | what it does |
| --- | --- | --- | --- |
{rows}

## The `%gradcheck` magic

Every option of `check` is a flag of the magic, and `%config GradCheckMagics.<option> = value` sets a default
that a flag overrides. Its help, as `%gradcheck?` prints it:

```text
{usage}
```
"""


def spec_page() -> str:
    rows = "\n".join(f"| `{key}` | {cell(meaning)} |" for key, meaning in SPEC_KEYS.items())
    return f"""# The assignment spec

An instructor writes one TOML file per assignment; `gradwidget validate SPEC` proves it works, and
`gradwidget grade SPEC SUBMISSION... --out DIR` grades a class with it. Every mistake in a spec is an error
naming the key (and, in a spec of problems, the problem). A spec grades one cost and its gradient
(`[functions]`, `[parameters]`, `[data]`, `[tolerance]`, `[scoring]`; see `notebooks/assignment/`) or holds
`[[problems]]`, one table per layer, loss, Jacobian, VJP or Hessian, each with its own functions, arguments,
tolerance and scoring (see `notebooks/layers-assignment/`, and its walkthrough). Its keys:

| key | meaning |
| --- | --- |
{rows}
"""


def example(code: str) -> gw.CheckResult:
    """A check that gives ``code``: the first corpus case that calls for it, or an interrupted one."""
    from corpus import all_cases

    if code == "interrupted":
        calls: list[int] = []

        def J(x: np.ndarray) -> float:
            calls.append(1)
            if len(calls) > 30:
                raise KeyboardInterrupt
            return float(np.sum(np.sin(x)))

        return gw.check(J, np.cos, np.linspace(0, 1, 40))
    case = next((c for c in all_cases() if code in c.codes), None)
    if case is not None:
        return gw.check(case.J, case.grad, case.theta, **case.options)
    from layer_cases import LAYER_CASES, make_layer  # the codes only layers and Jacobians give

    return next(c for c in map(make_layer, LAYER_CASES) if code in c.codes).run()


def diagnoses_page(stage: Path) -> str:
    images = stage / "diagnoses"
    images.mkdir(exist_ok=True)
    parts = ["""# Diagnoses

Every failure or warning of a check is a `Diagnosis` with one of these codes (`gradwidget.CODES`). A *fatal*
code fails the check on its own; the others explain a failure, or say what limited the check. Each example
below is a real check of a case from the test corpus; its heatmap colours each entry's discrepancy over its
own tolerance (red above 1: wrong, crossed).
"""]
    for code, info in gw.CODES.items():
        result = example(code)
        diagnosis = next(d for d in result.diagnoses if d.code == code)
        layout = result.evidence.layout
        block = next((b for b in layout.blocks if b.name == diagnosis.block), layout.blocks[0])
        (images / f"{code}.png").write_bytes(block_png(result, block))
        parts.append(f"""## `{code}`

{info.meaning[0].upper() + info.meaning[1:]}.{" **Fatal**: the check fails." if info.fatal else ""}

Example ({result.verdict}): {diagnosis.message}

![{code}: {block.name}](diagnoses/{code}.png)
""")
    return "\n".join(parts)


FOLDERS = {
    "gradwidget/": "the package (below, module by module)",
    "js/": "the heatmap's front end tested without a browser (`node --test js/`)",
    "tests/": "the tests, their folders mirroring the package's (`tests/grading/`, `tests/display/`)",
    "notebooks/": "tutorials and the two example courses, executed by the tests and the docs",
    "docs/": "these pages (`bash scripts/docs.sh` builds them)",
    "benchmarks/": "speed, memory, accuracy and grading against scipy, torch, jax and the course recipes",
    "scripts/": "the README's two commands (`demo.sh`, `test.sh`) and what they share",
    ".ci/run": "what CI runs: the README's test command",
}


def first_line(path: Path) -> str:
    """A module's docstring's first line."""
    return (ast.get_docstring(ast.parse(path.read_text())) or "").splitlines()[0]


def layout_page() -> str:
    from test_architecture import LAYERS, UPWARD, package_modules, unit_of

    modules = package_modules()
    parts = ["""# Layout

The repository:

| path | what it holds |
| --- | --- |
""" + "\n".join(f"| `{path}` | {cell(what)} |" for path, what in FOLDERS.items()) + """

The package's modules, layer by layer from the top: data flows down, and a module imports from its own layer
and the layers below only (`tests/test_architecture.py` holds this declaration and checks every import, lazy
ones included). The imports that run against the layers, all declared:
""", *(f"- `{a}` imports `{b}`: {why}." for (a, b), why in UPWARD.items())]
    for level, (purpose, units) in reversed(list(enumerate(LAYERS))):
        parts += ["", f"## {level}. {purpose[0].upper() + purpose[1:]}", "", "| module | what it is |",
                  "| --- | --- |"]
        for module in sorted(m for m in modules if unit_of(m) in units):
            name = "gradwidget" if module == "__init__" else f"gradwidget.{module}"
            parts.append(f"| `{name}` | {cell(first_line(modules[module]))} |")
    return "\n".join(parts) + "\n"


def main() -> int:
    stage = Path(sys.argv[1])
    (stage / "layout.md").write_text(layout_page())
    (stage / "options.md").write_text(options_page())
    (stage / "spec.md").write_text(spec_page())
    (stage / "diagnoses.md").write_text(diagnoses_page(stage))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
