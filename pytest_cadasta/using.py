"""Whether a pytest run uses the plugin, told from its options alone, and where
the run's state is kept once it does: a run that gives no ``--cadasta-*``
option or ini key imports nothing more of the plugin than what registers
them."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_cadasta.settings import OPTIONS, ini_name

#: Where the run's state (``session.CadastaSession``) is kept in the config.
STATE_KEY = pytest.StashKey[Any]()


def apps_given(config: pytest.Config) -> bool:
    """Whether the command line or the ini file names an app to check (read
    before pytest has parsed everything: early, for the safety before loading)."""
    args = config.known_args_namespace
    given = bool(getattr(args, "cadasta_app", None) or getattr(args, "cadasta_producer", None))
    for key in ("cadasta_app", "cadasta_producer"):
        try:
            given = given or bool(config.getini(key))
        except ValueError:
            pass
    return given


def given(config: pytest.Config) -> bool:
    """Whether any of the plugin's options or ini keys is set."""
    for name in OPTIONS:
        if getattr(config.option, ini_name(name), None) is not None:
            return True
        try:
            value = config.getini(ini_name(name))
        except ValueError:
            continue
        if value not in ("", [], False, None):
            return True
    return False


def state(config: pytest.Config) -> Any:
    """The run's state if the plugin made one (None: nothing to do)."""
    return config.stash.get(STATE_KEY, None)
