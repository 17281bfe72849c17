"""Write the SVG file of a Mermaid picture as the tests render it (headless
Chromium, the mermaid of tests/browser): ``.venv/bin/python tests/browser/draw.py
docs/deployment.mmd docs/deployment.svg`` from the repository's root."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mermaid_browser import Browser, chromium_with_mermaid  # noqa: E402 (tests/ on the path)


def main(source: str, picture: str) -> None:
    def missing(reason: str) -> NoReturn:
        sys.exit(f"draw.py: {reason}")

    chromium = chromium_with_mermaid(missing)
    with tempfile.TemporaryDirectory(prefix="draw-") as workdir:
        drawn = Browser(chromium, Path(workdir)).svg_file(Path(source).read_text(), "picture")
    Path(picture).write_text(drawn)
    print(f"wrote {picture}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: python {sys.argv[0]} SOURCE.mmd PICTURE.svg")
    main(*sys.argv[1:])
