"""Mermaid pictures rendered as GitHub's renderer shows them: headless Chromium
running the mermaid that tests/browser pins, for the tests (the ``browser``
session fixture) and for tests/browser/draw.py, which writes docs' pictures."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import NoReturn

import pytest

BROWSER = Path(__file__).parent / "browser"
MERMAID = BROWSER / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"


def links_and_hidden(source: str) -> list[tuple[str, str]]:
    """(start, end) of every arrow of a Mermaid flowchart, hidden ones too."""
    return [(m.group(1), m.group(2)) for m in re.finditer(
        r"^\s*(\w+) (?:[-=.~]+>?|-\. .*? \.-x)(?:\|.*\|)? (\w+)$", source, re.M)]


class _Svg(HTMLParser):
    """What a page rendered: its title, the error shown, the picture's arrows
    (id -> style), nodes (id -> classes) and text, and the picture itself as
    mermaid made it (``svg``, the markup of a standalone SVG file)."""

    def __init__(self) -> None:
        super().__init__()
        self.title = self.error = self.svg = ""
        self.edges: dict[str, str] = {}
        self.nodes: dict[str, str] = {}
        #: node id -> the x of its centre, as drawn
        self.x: dict[str, float] = {}
        self.text: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        found = dict(attrs)
        if tag in ("title", "pre", "textarea"):
            self._in = tag
        if found.get("data-edge") == "true":
            self.edges[found.get("data-id", "")] = found.get("style") or ""
        classes = (found.get("class") or "").split()
        if tag == "g" and "node" in classes:
            # picture-flowchart-<node id>-<n>
            node = re.sub(r"^picture-flowchart-(.*)-\d+$", r"\1", found.get("id", ""))
            self.nodes[node] = " ".join(classes)
            moved = re.match(r"translate\(([-\d.]+)", found.get("transform") or "")
            if moved:
                self.x[node] = float(moved.group(1))

    def backwards(self, source: str) -> list[str]:
        """The arrows of ``source`` drawn from right to left."""
        return [f"{start} -> {end}" for start, end in links_and_hidden(source)
                if self.x.get(start, 0) >= self.x.get(end, 0)]

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "pre":
            self.error += data
        elif self._in == "textarea":
            self.svg += data
        elif data.strip():
            self.text.append(data.strip())


#: The page that renders ``{source}`` with mermaid ``{config}``: the picture is
#: shown in #shown (its DOM, as a reader's browser holds it) and its markup, as
#: mermaid.render returns it, kept as text in #svg.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="{mermaid}"></script></head>
<body><pre id="error"></pre><div id="shown"></div><textarea id="svg"></textarea>
<script>
const source = {source};
mermaid.initialize({config});
(async () => {{
  try {{
    await mermaid.parse(source);
    const {{svg}} = await mermaid.render("picture", source);
    document.getElementById("shown").innerHTML = svg;
    document.getElementById("svg").textContent = svg;
    document.title = "rendered";
  }} catch (error) {{
    document.getElementById("error").textContent = String(error && error.message || error);
    document.title = "failed";
  }}
}})();
</script></body></html>
"""


def _script(value: object) -> str:
    """``value`` as JavaScript, safe inside a <script> element."""
    return json.dumps(value).replace("</", "<\\/")


@dataclass
class Browser:
    """Headless Chromium showing a Mermaid picture as GitHub's renderer does."""

    chromium: str
    workdir: Path

    def render(self, source: str, name: str, **config: object) -> _Svg:
        """``source`` as rendered; ``config``: mermaid's settings beyond the
        defaults (e.g. ``flowchart={"htmlLabels": False}``)."""
        page = self.workdir / f"{name}.html"
        page.write_text(PAGE.format(
            mermaid=MERMAID.as_uri(), source=_script(source),
            config=_script({"startOnLoad": False, "securityLevel": "strict", **config})))
        profile = self.workdir / f"{name}-profile"
        dom = subprocess.run(
            [self.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=20000",
             "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120, check=True).stdout
        shown = _Svg()
        shown.feed(dom)
        shown.close()
        assert shown.title == "rendered", f"mermaid refused the picture: {shown.error}"
        return shown

    def renderer(self) -> str:
        """What draws: mermaid's version and Chromium's (the sizes in a picture
        come from the fonts and the layout of that Chromium)."""
        mermaid = json.loads((MERMAID.parents[1] / "package.json").read_text())["version"]
        chromium = subprocess.run([self.chromium, "--version"], capture_output=True, text=True,
                                  timeout=120).stdout.strip()
        return f"mermaid {mermaid}, {chromium}"

    def svg_file(self, source: str, name: str) -> str:
        """The text of a standalone SVG file of ``source``: mermaid's markup (its
        root with xmlns, its style sheet inside) as XML, the same every time,
        saying what drew it in a comment (``RENDERER``)."""
        # The cylinders are drawn by rough.js, whose curves take random control
        # points unless seeded: seeded, one source makes one file.
        svg = self.render(source, name, handDrawnSeed=1).svg
        # HTML leaves the <br> of the labels open; XML closes them.
        text = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<!-- {RENDERER}{self.renderer()} -->\n{svg.replace('<br>', '<br/>')}\n")
        ElementTree.fromstring(text.encode())  # raises ParseError if it is not XML
        return text


#: How a drawn SVG file says what drew it (the comment after its declaration).
RENDERER = "drawn by "


def drawn_by(svg: str) -> str | None:
    """What drew an SVG file ``svg_file`` wrote (None: it does not say)."""
    found = re.search(rf"<!-- {RENDERER}(.*?) -->", svg)
    return found.group(1) if found else None


def unavailable(reason: str) -> NoReturn:
    """Skip a test that needs the browser, except in CI (where CI is set):
    there .ci/install test provides it, and its absence is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; in CI, bash .ci/install test installs Chromium (apt-get) and "
                    "mermaid (npm ci in tests/browser)", pytrace=False)
    pytest.skip(f"{reason}: the reports' pictures are not rendered (bash .ci/install test "
                "installs what it takes)")


def chromium_with_mermaid(missing: Callable[[str], NoReturn]) -> str:
    """The Chromium to render with, mermaid installed beside it (npm ci in
    tests/browser, once whatever runs in parallel); else ``missing(reason)``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        missing("no chromium on PATH")
    if not MERMAID.is_file():
        npm = shutil.which("npm")
        if npm is None:
            missing("mermaid is not installed in tests/browser, and there is no npm")
        with open(BROWSER / ".npm-install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one install, whatever runs in parallel
            if not MERMAID.is_file():
                done = subprocess.run([npm, "ci", "--prefix", str(BROWSER), "--no-audit",
                                       "--no-fund", "--loglevel=error"],
                                      capture_output=True, text=True, timeout=600)
                if done.returncode != 0:
                    missing(f"npm ci in tests/browser failed: {done.stderr.strip()[-300:]}")
    return chromium


@pytest.fixture(scope="session")
def browser(tmp_path_factory) -> Browser:
    return Browser(chromium_with_mermaid(unavailable), tmp_path_factory.mktemp("browser"))
