"""Write the reference pages generated from gradwidget's own declarations into the staged docs source.

``python docs/generate.py STAGE``: options.md (from the options of ``check``
and the magic's parser), spec.md (every key of the assignment spec),
diagnoses.md (every diagnosis code with an example: a check of a corpus
case, or of a layer case, that gives it, its message and a heatmap of its
block).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import gradwidget as gw  # noqa: E402
from gradwidget._options import OPTIONS  # noqa: E402
from gradwidget._plot import block_png  # noqa: E402
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


def main() -> int:
    stage = Path(sys.argv[1])
    (stage / "options.md").write_text(options_page())
    (stage / "spec.md").write_text(spec_page())
    (stage / "diagnoses.md").write_text(diagnoses_page(stage))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
