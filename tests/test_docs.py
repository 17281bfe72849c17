"""The README stays true: every check, every Config variable, the quick start,
the deployment example and its picture."""

import re
from pathlib import Path

import pytest

from cadasta_toolbox.config import INTERNAL_DEFAULTS
from pytest_cadasta.checks import all_checks, system_checks

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.rst").read_text()


class _Worker:
    entry = type("Entry", (), {"is_worker": True})()


class _Producer:
    entry = type("Entry", (), {"is_worker": False})()


def test_every_check_is_documented_with_what_it_protects_against():
    apps = [_Worker, _Worker, _Producer]
    for check in (all_checks() + system_checks(apps) + all_checks(audit=True)
                  + system_checks(apps, audit=True)):
        name = f"``{check.group}::{check.name}"
        assert name in README, name
        entry = README[README.index(name):].split("\n\n", 1)[0]
        assert "Protects against:" in entry, name


def test_every_internal_variable_is_documented_with_its_default():
    for name, default in INTERNAL_DEFAULTS.items():
        assert f"``{name}``" in README
        assert f"``{default!r}``" in README, (name, default)


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


def python_blocks():
    """The README's Python examples, each as (first line, code)."""
    blocks = []
    for chunk in README.split(".. code-block:: python\n\n")[1:]:
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

def test_the_readme_deployment_runs_as_it_is_in_one_command(run_inner, pytester):
    """The README's deployment (the platform and two workers) and its test, with
    the command the README gives: each app conforms, the system conforms, and
    the test sees the platform's export mail its link through the other worker."""
    files = {first[2:]: code for first, code in python_blocks() if first.startswith("# ")}
    assert set(files) >= set(DEPLOYMENT)
    for path in DEPLOYMENT:
        target = pytester.path / path
        target.parent.mkdir(exist_ok=True)
        target.write_text(files[path])
        (target.parent / "__init__.py").touch()
    command = README[README.index("    pytest --cadasta-app=export_worker"):].split("\n\n")[0]
    args = command.replace("\\\n", " ").split()[1:]
    assert args[0] == "--cadasta-app=export_worker" and len(args) == 5
    result = run_inner(*args, "--cadasta-report=verdict.md", "tests")
    result.stdout.fnmatch_lines(["tests/test_deployment.py .*", "export_worker: conforms",
                                 "*", "email_worker: conforms", "*",
                                 "platform_app: conforms as a producer", "*",
                                 "system: conforms", "*",
                                 "verdict: the system conforms (3 apps)"])
    assert result.ret == 0
    # The README's picture of the deployment is the one its report draws.
    drawn = re.search(r"^```mermaid\n(.*?)^```$", (pytester.path / "verdict.md").read_text(),
                      re.S | re.M).group(1)
    shown = README[README.index(".. code-block:: mermaid\n\n"):].split("\n\n")[1]
    assert "\n".join(line[4:] for line in shown.splitlines()) + "\n" == drawn


def test_the_readme_renders_on_the_package_index():
    """What twine check (CI's .ci/package) says of the long description: a
    malformed table or a stray role makes the index show the source."""
    import io

    from readme_renderer.rst import render

    warnings = io.StringIO()
    assert render(README, stream=warnings) is not None, warnings.getvalue()
