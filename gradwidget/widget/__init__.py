"""The interactive panel: per-block heatmaps on anywidget, controls, the eps sweep.

ipywidgets and anywidget are imported here only, and this package only when
a panel is asked for.
"""

from .heatmap import Heatmap
from .panel import GradCheckPanel, panel_of

__all__ = ["GradCheckPanel", "Heatmap", "panel_of"]
