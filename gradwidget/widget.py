"""The interactive panel and its heatmap widget, where they have always been importable from.

They live in `gradwidget.display`; importing this module loads ipywidgets
and anywidget.
"""

from .display._heatmap import Heatmap
from .display._panel import GradCheckPanel, panel_of

__all__ = ["GradCheckPanel", "Heatmap", "panel_of"]
