"""Sphinx configuration of gradwidget's documentation (built by ``bash scripts/docs.sh``)."""

project = "gradwidget"
author = "the gradwidget developers"
copyright = "the gradwidget developers"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "assignment/student.ipynb", "assignment/solution.ipynb",
                    "layers-assignment/student.ipynb", "layers-assignment/solution.ipynb"]
html_theme = "alabaster"
html_title = "gradwidget"
html_static_path: list[str] = []

# Everything offline: no MathJax, no widget scripts from a CDN.
nb_execution_mode = "force"
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_ipywidgets_js: dict[str, dict[str, str]] = {}
myst_enable_extensions = ["colon_fence"]
suppress_warnings = ["mystnb.unknown_mime_type"]

autodoc_typehints = "none"  # the numpy-style docstrings say the types
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
