"""chord: chords complete, and chord_unlock does not poll forever."""

from __future__ import annotations

import time
from typing import Any

from pytest_cadasta.checks.common import TOOLBOX, routed_queue, row_text
from pytest_cadasta.checks.registry import Phase, check
from pytest_cadasta.conformance import ROUND_TRIP_TIMEOUT, Conformance, fail, undeliverable
from pytest_cadasta.events import DONE
from pytest_cadasta.wiring import CHORD_UNLOCK


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

    worker = c.require_worker()
    probe = c.probes.probe(c.probes.home)
    header = [signature(probe, args=(f"part {i}",), app=c.app) for i in range(2)]
    since = time.monotonic()
    try:
        with undeliverable() as lost:
            joined = chord(header, app=c.app)(signature(probe, args=("body",), app=c.app))
    except KeyError as exc:
        fail(saw=f"sending a chord raised KeyError: {exc} (the database backend reads the "
                 "route's 'queue' to send celery.chord_unlock)",
             needs="routes that name their queue",
             fix=f"return 'queue' from the router (the router of {TOOLBOX} does)")
    # The backend published chord_unlock, synchronously, before the call returned.
    for unlock in c.events.published(CHORD_UNLOCK, since):
        key = unlock.info.get("routing_key")
        if any(f"binding key {key!r}" in text for text in lost):
            fail(saw=f"{CHORD_UNLOCK} was published with routing key {key!r} and reached no "
                     "queue: the publishing connection had no binding for it",
                 needs=f"{CHORD_UNLOCK} delivered to the celery queue, so chords complete",
                 fix=f"make the router declare the route's queue (the router of {TOOLBOX} "
                     "does)")
        target = routed_queue(c, CHORD_UNLOCK)
        if target not in worker.queues:
            fail(saw=f"{CHORD_UNLOCK} routes to queue {target!r}, which the worker does not "
                     f"consume ({', '.join(worker.queues)})",
                 needs=f"{CHORD_UNLOCK} in the celery queue",
                 fix=f"route 'celery.*' to the celery queue (the router of {TOOLBOX})")
    ended = c.events.wait_for(joined.id, DONE, ROUND_TRIP_TIMEOUT)
    row = c.row(joined.id)
    if ended is None or row is None or row["status"] != "SUCCESS":
        unlocks = c.events.published(CHORD_UNLOCK, since)
        unlock = c.events.story(unlocks[0].task_id) if unlocks else "never published"
        fail(saw=f"the chord's body ended {row_text(row)}: {c.events.story(joined.id)}; "
                 f"{CHORD_UNLOCK}: {unlock}",
             needs="chords that complete", fix=f"configure the app with {TOOLBOX}")
