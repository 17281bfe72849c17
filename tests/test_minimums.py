"""The minimum versions setup.cfg claims are the ones CI installs and tests:
``.ci/minimums.txt`` pins each direct dependency to its lower bound, and each
library of the ``test`` extra it names (one the tests judge with, such as
jsonschema) to that extra's lower bound."""

import configparser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[1]


def claimed_minimums(install_requires: str) -> dict[str, Version]:
    """Each requirement's lower bound (the only specifier it may have: ``>=``)."""
    minimums = {}
    for line in filter(None, (line.strip() for line in install_requires.splitlines())):
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == ">=", f"{line!r}: state a minimum, as '>= X.Y.Z'"
        minimums[canonicalize_name(requirement.name)] = Version(specifier.version)
    return minimums


def pinned_versions(constraints: str) -> dict[str, Version]:
    """What a constraints file pins, as ``name==version`` lines."""
    pins = {}
    for line in constraints.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def drift(install_requires: str, constraints: str, test_extra: str = "") -> dict[str, tuple]:
    """Package -> (claimed minimum, pinned version), where the two differ: every
    requirement of ``install_requires``, and those of ``test_extra`` that the
    constraints pin (the others, tools such as ruff, float)."""
    claimed = claimed_minimums(install_requires)
    pinned = pinned_versions(constraints)
    claimed.update({name: minimum for name, minimum in claimed_minimums(test_extra).items()
                    if name in pinned})
    return {name: (claimed.get(name), pinned.get(name))
            for name in sorted(claimed.keys() | pinned.keys())
            if claimed.get(name) != pinned.get(name)}


def test_ci_tests_exactly_the_minimums_setup_cfg_claims():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    install_requires = setup["options"]["install_requires"]
    constraints = (ROOT / ".ci" / "minimums.txt").read_text()
    test_extra = setup["options.extras_require"]["test"]
    assert drift(install_requires, constraints, test_extra) == {}
    assert "jsonschema" in pinned_versions(constraints)  # the reports' schema is judged at it


def test_drift_is_found_whichever_side_moves():
    claimed = "celery[sqs] >= 5.5.0\nboto3 >= 1.28.0\n"
    assert drift(claimed, "celery==5.5.0\nboto3==1.28.0\n") == {}
    assert drift(claimed, "Celery==5.5\nboto3==1.28.0  # a comment\n") == {}
    assert drift(claimed, "celery==5.5.1\nboto3==1.28.0\n") == {
        "celery": (Version("5.5.0"), Version("5.5.1"))}
    assert drift(claimed, "celery==5.5.0\n") == {"boto3": (Version("1.28.0"), None)}
    assert drift(claimed, "celery==5.5.0\nboto3==1.28.0\nkombu==5.5.2\n") == {
        "kombu": (None, Version("5.5.2"))}
    extra = "jsonschema >= 4.18.0\nruff >= 0.5\n"
    pins = "celery==5.5.0\nboto3==1.28.0\n"
    assert drift(claimed, pins + "jsonschema==4.18.0\n", extra) == {}
    assert drift(claimed, pins + "jsonschema==4.19.0\n", extra) == {
        "jsonschema": (Version("4.18.0"), Version("4.19.0"))}
    assert drift(claimed, pins, extra) == {}  # an extra's library pinned or not: the pin decides
