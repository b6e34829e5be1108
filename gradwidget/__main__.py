"""``python -m gradwidget``: the ``gradwidget`` command (grading)."""

from .grading._cli import main

raise SystemExit(main())
