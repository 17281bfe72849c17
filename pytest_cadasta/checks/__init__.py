"""The conformance checks, one module per group. Importing this package
registers them all; ``all_checks()`` lists them in running order.

To add a check: write a function in its group's module, decorated with
``@check(group, phase=..., per_queue=...)``, whose docstring's first paragraph
says what fails in production without it (a failure's headline, and "Protects
against" in the manual) and whose paragraph opening with ``Evidence:`` says
what it looks at; the manual's reference is made from the two. The checks of
an audit (``--cadasta-audit``) are in ``deployment``.
"""

from pytest_cadasta.basics.ids import GROUPS
from pytest_cadasta.checks import (  # noqa: F401
    chord,
    deployment,
    exchange,
    monitor,
    platform,
    result,
    routing,
    system,
)
from pytest_cadasta.checks.registry import Check, Phase, all_checks, iter_checks, system_checks

__all__ = ["GROUPS", "Check", "Phase", "all_checks", "iter_checks", "system_checks"]
