"""chord: chords complete, and chord_unlock does not poll forever."""

from __future__ import annotations

from typing import Any

from pytest_cadasta.checks.common import TOOLBOX, row_text
from pytest_cadasta.checks.registry import Phase, check
from pytest_cadasta.conformance import Conformance, fail


@check("chord", phase=Phase.WITH_WORKER)
def chord_unlock_retries_are_bounded(c: Conformance, _: Any) -> None:
    """Unbounded, celery.chord_unlock polls forever for a chord whose part was lost
    (celery/celery#2725)."""
    c.require_worker()
    limit = c.app.tasks["celery.chord_unlock"].max_retries
    if not isinstance(limit, int) or isinstance(limit, bool):
        fail(saw=f"celery.chord_unlock.max_retries = {limit!r} after the worker started",
             needs="an integer bound on chord_unlock's retries",
             fix="cadasta_toolbox.app.setup_app(app) at worker start (automatic with "
                 f"{TOOLBOX}); CHORD_UNLOCK_MAX_RETRIES sets the bound")


@check("chord", phase=Phase.WITH_WORKER)
def chord_completes(c: Conformance, _: Any) -> None:
    """With the database backend a chord needs its route's queue to send
    chord_unlock; without it every chord raises KeyError: 'queue'."""
    from celery import chord, signature

    c.require_worker()
    probe = c.probes.probe(c.probes.home)
    header = [signature(probe, args=(f"part {i}",), app=c.app) for i in range(2)]
    try:
        joined = chord(header, app=c.app)(signature(probe, args=("body",), app=c.app))
    except KeyError as exc:
        fail(saw=f"sending a chord raised KeyError: {exc} (the database backend reads the "
                 "route's 'queue' to send celery.chord_unlock)",
             needs="routes that name their queue",
             fix=f"return 'queue' from the router (the router of {TOOLBOX} does)")
    row = c.wait_for_row(joined.id, timeout=20.0)
    if row is None or row["status"] != "SUCCESS":
        fail(saw=f"the chord's body ended {row_text(row)} after 20 s",
             needs="chords that complete", fix=f"configure the app with {TOOLBOX}")
