"""Shared by the toolbox tests that start Python (or a worker) in a subprocess."""

import os
from pathlib import Path

import pytest

from cadasta_toolbox.config import INTERNAL_DEFAULTS

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def subprocess_environment():
    """Builds a subprocess's environment: the developer's, less anything AWS,
    Celery, Sentry or ``Config`` would read, with ``toolbox_worker`` importable;
    then the given variables."""

    def build(**variables: str) -> dict[str, str]:
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("AWS_", "CELERY_", "SENTRY_"))
               and name not in INTERNAL_DEFAULTS and name.lower() != "no_proxy"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        env.update(variables)
        return env

    return build
