"""Sphinx's settings for pytest-cadasta's manual: ``python -m sphinx -W docs OUT``
(CI and ``tests/test_docs.py`` build it with warnings as errors)."""

import sys
from pathlib import Path

# The manual's own directive (docs/_ext/cadasta_reference.py), which writes the
# checks' reference and the settings from the plugin's code.
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cadasta_toolbox  # noqa: E402 (the path above: the checkout's own)

release = cadasta_toolbox.__version__

project = "pytest-cadasta"
author = "the pytest-cadasta developers"
extensions = ["cadasta_reference"]
root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []
# Mermaid code blocks are shown as their source; the picture beside them is
# the rendered SVG.
highlight_language = "none"
# Quotes stay as written: they quote settings and names ('#', 'export'), and
# the tests find each check's words in the pages as the docstrings hold them.
smartquotes = False
