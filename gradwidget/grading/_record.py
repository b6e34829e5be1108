"""What a grade was computed from, kept beside it, so that ``--incremental`` regrades only what changed.

Each graded submission's folder gets ``record.json``: a digest of everything
its grade depends on (gradwidget's version, the spec, the reference, the
saved answers, the data files, the course secret, the public or hidden
points, the isolation, and the submission's own files and id; the reference's
helper modules are the ``.py`` files beside it) and the grade
as grades.csv holds it. It is written last, by the trusted side, in a folder
no worker can see, so a run that died half-way leaves only whole records; a
grade the grader itself failed on (status ``error``) is never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import __version__
from ._scoring import Graded, Item
from ._spec import Spec

__all__ = ["RECORD", "course_digest", "read_record", "submission_digest", "write_record"]

RECORD = "record.json"


def course_digest(spec: Spec, secret: bytes | None, public: bool, isolation: str) -> str:
    """A digest of what every submission's grade shares: version, course files, secret, points, isolation."""
    helpers = sorted(spec.reference_file.parent.glob("*.py")) if spec.reference_file is not None else []
    files = [spec.path, spec.reference_file, *helpers, spec.answers_file,
             *(spec.folder / name for name in sorted(spec.data_files))]
    digest = hashlib.sha256(f"gradwidget {__version__}\npublic {public}\nisolation {isolation}\n".encode())
    digest.update(hashlib.sha256(secret or b"").digest())
    _add_files(digest, (f for f in files if f is not None))
    return digest.hexdigest()


def submission_digest(course: str, identifier: str, files: Iterable[Path]) -> str:
    """The digest of one submission's grade's inputs: the course's, its id (its points), its files."""
    digest = hashlib.sha256(f"{course}\n{identifier}\n".encode())
    _add_files(digest, files)
    return digest.hexdigest()


def _add_files(digest: Any, files: Iterable[Path]) -> None:
    for path in files:
        try:
            content = Path(path).read_bytes()
        except OSError:
            content = b"<unreadable>"
        digest.update(f"{Path(path).name}\n{len(content)}\n".encode())
        digest.update(content)


def write_record(folder: Path, inputs: str, graded: Graded, reason: str) -> None:
    """Keep ``graded`` (as grades.csv holds it, ``reason`` its row's) with the digest of its inputs."""
    record = {"inputs": inputs, "gradwidget": __version__, "id": graded.id, "status": graded.status,
              "reason": graded.reason, "summary": reason, "flags": list(graded.flags),
              "seconds": graded.seconds, "isolation": graded.isolation,
              "items": [[i.name, i.max_points, i.agreed, i.checked] for i in graded.items],
              "shared_answers": list(graded.shared_answers)}
    partial = folder / f".{RECORD}.partial"
    partial.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(partial, folder / RECORD)  # whole or absent, whenever the run stops


def read_record(folder: Path, inputs: str, items: tuple[str, ...]) -> Graded | None:
    """The grade recorded in ``folder`` if its inputs' digest is ``inputs`` and its outputs are all there."""
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        if (record.get("inputs") != inputs or record["status"] == "error"
                or not all((folder / name).is_file() for name in ("results.json", "feedback.html"))):
            return None
        kept = tuple(Item(str(n), float(m), int(a), int(c)) for n, m, a, c in record["items"])
        if tuple(item.name for item in kept) != items:
            return None
        return Graded(str(record["id"]), str(record["status"]), str(record["reason"]), kept,
                      flags=tuple(map(str, record["flags"])), seconds=float(record["seconds"]),
                      isolation=str(record["isolation"]), summary=str(record["summary"]), reused=True,
                      shared_answers=tuple(map(str, record["shared_answers"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None
