"""The manual's reference sections, written from the plugin's code so their
words live in one place: ``.. cadasta-checks:: KIND`` lists the registered
checks of one kind (each check's docstring says what it protects against and
what it looks at), ``.. cadasta-settings::`` every option and ini key from
``pytest_cadasta.settings.OPTIONS``."""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from pytest_cadasta.basics.ids import SYSTEM
from pytest_cadasta.checks.registry import Check, every_check
from pytest_cadasta.settings import OPTIONS, ini_name, option_name

#: Which checks each kind lists, in running order.
KINDS = {
    "conformance": lambda c: not c.audit and c.group != SYSTEM,
    "system": lambda c: not c.audit and c.group == SYSTEM,
    "audit": lambda c: c.audit,
}

#: How each type of ini value is given.
INI_TYPES = {"linelist": "one per line", "bool": "true or false", "string": "a value"}


def check_lines(check: Check) -> list[str]:
    """One check as a definition-list entry: its id, what it looks at, what it
    protects against."""
    suffix = "[<queue>]" if check.per_queue else ""
    assert check.evidence and check.doc, f"{check.group}::{check.name} says too little"
    return [f".. _check-{check.group}-{check.name}:", "",
            f"``{check.group}::{check.name}{suffix}``",
            f"    Evidence: {check.evidence}", "",
            f"    Protects against: {check.doc}", ""]


def plain(text: str) -> str:
    """``text``, written for ``--help``, as reStructuredText that shows it as it
    is (a ``*`` in a path is no emphasis)."""
    text = re.sub(r"([\\*`|])", r"\\\1", text)
    return re.sub(r"_(?=\W|$)", r"\\_", text)


def setting_lines(name: str, help_text: str, kind: str) -> list[str]:
    """One option as a definition-list entry: both spellings and its words (those
    ``pytest --help`` shows)."""
    return [f"``{option_name(name)}`` (ini ``{ini_name(name)}``: {INI_TYPES[kind]})",
            f"    {plain(help_text)}", ""]


class _Generated(SphinxDirective):
    def parse(self, lines: list[str]) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]),
                                self.content_offset, container)
        return container.children


class ChecksDirective(_Generated):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        kind = self.arguments[0]
        if kind not in KINDS:
            raise self.error(f"unknown kind of checks {kind!r}: one of {sorted(KINDS)}")
        lines: list[str] = []
        for check in every_check():
            if KINDS[kind](check):
                lines += check_lines(check)
        return self.parse(lines)


class SettingsDirective(_Generated):
    def run(self) -> list[nodes.Node]:
        lines: list[str] = []
        for name, (help_text, kind) in OPTIONS.items():
            lines += setting_lines(name, help_text, kind)
        return self.parse(lines)


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("cadasta-checks", ChecksDirective)
    app.add_directive("cadasta-settings", SettingsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
