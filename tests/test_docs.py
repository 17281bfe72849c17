"""The README and the manual stay true: the README a front page that renders
on the package index, its quick start and its worker example; the manual built
by Sphinx with warnings as errors, every check's words (written once, in its
docstring) and every setting in it, every Config variable, the deployment
example and its picture."""

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cadasta_toolbox.config import INTERNAL_DEFAULTS
from pytest_cadasta.checks.registry import every_check
from pytest_cadasta.settings import OPTIONS, ini_name, option_name

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.rst").read_text()
DOCS = ROOT / "docs"
#: The most lines the README (the package index's front page) may have.
README_LINES = 250


def test_every_check_says_what_it_protects_against_and_what_it_looks_at():
    """The manual's reference is made of these two, from each check's docstring."""
    checks = every_check()
    assert len(checks) >= 50
    for check in checks:
        assert len(check.doc) > 40, (check.name, check.doc)
        assert len(check.evidence) > 20, (check.name, check.evidence)
        assert not check.evidence.startswith("Evidence"), check.name


def test_every_internal_variable_is_documented_with_its_default():
    toolbox = (DOCS / "toolbox.rst").read_text()
    for name, default in INTERNAL_DEFAULTS.items():
        assert f"``{name}``" in toolbox
        assert f"``{default!r}``" in toolbox, (name, default)


def test_the_readme_is_a_front_page_pointing_at_the_manual():
    assert len(README.splitlines()) <= README_LINES
    for page in ("usage", "checks", "deployment", "audit", "settings", "toolbox", "security",
                 "migrating", "benchmarks"):
        assert f"``docs/{page}.rst``" in README, page
        assert (DOCS / f"{page}.rst").is_file(), page


class _Text(HTMLParser):
    """The text of an HTML page, as a reader sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    @classmethod
    def of(cls, path: Path) -> str:
        parser = cls()
        parser.feed(path.read_text())
        return " ".join("".join(parser.parts).split())


@pytest.fixture(scope="module")
def manual(tmp_path_factory) -> Path:
    """The manual, built as CI builds it: warnings are errors."""
    out = tmp_path_factory.mktemp("manual")
    built = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q",
                            "-b", "html", str(DOCS), str(out)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    return out


def test_the_manual_builds_and_lists_every_check_in_its_own_words(manual):
    pages = {page: _Text.of(manual / f"{page}.html")
             for page in ("checks", "deployment", "audit")}
    for check in every_check():
        page = "audit" if check.audit else "deployment" if check.group == "system" else "checks"
        text = pages[page]
        name = f"{check.group}::{check.name}"
        assert name in text, (page, name)
        # The docstring's words, whole, in the check's own entry, as the reader
        # sees them (markup taken away): "Evidence: ... Protects against: ...".
        evidence, doc = (" ".join(re.sub(r"``|\*", "", words).split())
                         for words in (check.evidence, check.doc))
        start = text.index(name)
        entry = text[start:start + len(name) + len(evidence) + len(doc) + 80]
        assert f"Evidence: {evidence} Protects against: {doc}" in entry, name


def test_the_manual_lists_every_setting_with_its_help(manual):
    text = _Text.of(manual / "settings.html")
    for name, (help_text, _) in OPTIONS.items():
        assert option_name(name) in text and ini_name(name) in text, name
        assert " ".join(help_text.split())[:50] in text, name


def test_the_manual_shows_the_deployment_picture(manual):
    page = (manual / "deployment.html").read_text()
    assert re.search(r'<img [^>]*src="_images/deployment\.svg"', page), "no picture"
    assert (manual / "_images" / "deployment.svg").is_file()


def test_quick_start_test_command_is_what_ci_runs():
    assert "bash .ci/install test && .venv/bin/python -m pytest\n" in README
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci.index("bash .ci/install test") < ci.index(".venv/bin/python -m pytest")
    # ...and again on the minimum versions, which the README mentions.
    assert ci.index("bash .ci/install test minimums") < ci.index(
        ".venv-min/bin/python -m pytest")
    assert "``bash .ci/install test minimums``" in README


def test_quick_start_main_job_runs_the_example_worker():
    assert ("bash .ci/install && cd examples/worker && ../../.venv/bin/python -m pytest "
            "--cadasta-app=worker.celery:app") in README
    assert (ROOT / "examples" / "worker" / "worker" / "celery.py").is_file()


def python_blocks(text: str = README):
    """The Python examples of a page (the README's by default), each as (first
    line, code)."""
    blocks = []
    for chunk in text.split(".. code-block:: python\n\n")[1:]:
        lines = []
        for line in chunk.splitlines():
            if line and not line.startswith("    "):
                break
            lines.append(line[4:])
        code = "\n".join(lines).strip() + "\n"
        blocks.append((code.splitlines()[0], code))
    return blocks


def test_the_readme_worker_and_its_test_run_as_they_are(run_inner, pytester):
    """Every line of the README's worker example and of its test, run as a user
    who copied them would."""
    files = {first[2:]: code for first, code in python_blocks() if first.startswith("# ")}
    assert set(files) >= {"worker/celery.py", "tests/test_export.py"}
    for path in ("worker/celery.py", "tests/test_export.py"):
        target = pytester.path / path
        target.parent.mkdir(exist_ok=True)
        target.write_text(files[path])
    (pytester.path / "worker" / "__init__.py").write_text("")
    result = run_inner("--cadasta-app=worker", "-m", "not cadasta", "tests")
    result.assert_outcomes(passed=1)


DEPLOYMENT = ("export_worker/celery.py", "email_worker/celery.py", "platform_app/celery.py",
              "tests/test_deployment.py")

@pytest.mark.slow
def test_the_manuals_deployment_runs_as_it_is_in_one_command(run_inner, pytester):
    """The manual's deployment (the platform and two workers) and its test, with
    the command the manual gives: each app conforms, the system conforms, and
    the test sees the platform's export mail its link through the other worker."""
    page = (DOCS / "deployment.rst").read_text()
    files = {first[2:]: code for first, code in python_blocks(page) if first.startswith("# ")}
    assert set(files) >= set(DEPLOYMENT)
    for path in DEPLOYMENT:
        target = pytester.path / path
        target.parent.mkdir(exist_ok=True)
        target.write_text(files[path])
        (target.parent / "__init__.py").touch()
    command = page[page.index("    pytest --cadasta-app=export_worker"):].split("\n\n")[0]
    args = command.replace("\\\n", " ").split()[1:]
    assert args[0] == "--cadasta-app=export_worker" and len(args) == 5
    result = run_inner(*args, "--cadasta-report=verdict.md", "tests")
    result.stdout.fnmatch_lines(["tests/test_deployment.py .*", "export_worker: conforms",
                                 "*", "email_worker: conforms", "*",
                                 "platform_app: conforms as a producer", "*",
                                 "system: conforms", "*",
                                 "verdict: the system conforms (3 apps)"])
    assert result.ret == 0
    # The manual's picture of the deployment is the one its report draws.
    drawn = re.search(r"^```mermaid\n(.*?)^```$", (pytester.path / "verdict.md").read_text(),
                      re.S | re.M).group(1)
    assert (DOCS / "deployment.mmd").read_text() == drawn


def test_the_readme_renders_on_the_package_index():
    """What twine check (CI's .ci/package) says of the long description: a
    malformed table or a stray role makes the index show the source."""
    import io

    from readme_renderer.rst import render

    warnings = io.StringIO()
    assert render(README, stream=warnings) is not None, warnings.getvalue()
