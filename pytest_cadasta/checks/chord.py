"""chord: chords complete, and chord_unlock does not poll forever."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pytest_cadasta.apps.probes import ELSEWHERE_ERRBACK
from pytest_cadasta.apps.sending import undeliverable
from pytest_cadasta.basics.messages import CHORD_UNLOCK
from pytest_cadasta.basics.protocol import TOOLBOX, fail
from pytest_cadasta.checks.common import row_text
from pytest_cadasta.checks.registry import Phase, check
from pytest_cadasta.services import events
from pytest_cadasta.services.events import DONE

if TYPE_CHECKING:
    from pytest_cadasta.running.app_state import AppState


@check("chord", phase=Phase.WITH_WORKER)
def chord_unlock_retries_are_bounded(c: AppState, _: Any) -> None:
    """Unbounded, celery.chord_unlock polls forever for a chord whose part was lost
    (celery/celery#2725).

    Evidence: *worker*: ``celery.chord_unlock`` has an integer ``max_retries`` once the
    worker has started."""
    c.require_worker()
    limit = c.app.tasks["celery.chord_unlock"].max_retries
    if not isinstance(limit, int) or isinstance(limit, bool):
        fail(saw=f"celery.chord_unlock.max_retries = {limit!r} after the worker started",
             needs="an integer bound on chord_unlock's retries",
             fix="cadasta_toolbox.app.setup_app(app) at worker start (automatic with "
                 f"{TOOLBOX}); CHORD_UNLOCK_MAX_RETRIES sets the bound")


def send_chord(c: AppState, header: list, body: Any) -> Any:
    """Send the chord ``header`` -> ``body``; fail the check at once if it cannot
    complete: the router names no queue (KeyError), or chord_unlock, published
    (synchronously) as the chord was sent, reached no queue or a queue the
    worker does not consume."""
    from celery import chord

    worker = c.require_worker()
    c.fail_if_results_cannot_land()
    since = time.monotonic()
    try:
        with undeliverable() as lost:
            joined = chord(header, app=c.app)(body)
    except KeyError as exc:
        fail(saw=f"sending a chord raised KeyError: {exc} (the database backend reads the "
                 "route's 'queue' to send celery.chord_unlock)",
             needs="routes that name their queue",
             fix=f"return 'queue' from the router (the router of {TOOLBOX} does)")
    for unlock in c.events.published(CHORD_UNLOCK, since):
        key = unlock.info.get("routing_key")
        if any(f"binding key {key!r}" in text for text in lost):
            fail(saw=f"{CHORD_UNLOCK} was published with routing key {key!r} and reached no "
                     "queue: the publishing connection had no binding for it",
                 needs=f"{CHORD_UNLOCK} delivered to the celery queue, so chords complete",
                 fix=f"make the router declare the route's queue (the router of {TOOLBOX} "
                     "does)")
        target = c.routed_queue(CHORD_UNLOCK)
        if target not in worker.queues:
            fail(saw=f"{CHORD_UNLOCK} routes to queue {target!r}, which the worker does not "
                     f"consume ({', '.join(worker.queues)})",
                 needs=f"{CHORD_UNLOCK} in the celery queue, consumed by the worker",
                 fix=f"consume 'celery' (-Q ...,celery) and route 'celery.*' there (the "
                     f"router of {TOOLBOX} does)")
    return joined


@check("chord", phase=Phase.WITH_WORKER)
def chord_completes(c: AppState, _: Any) -> None:
    """With the database backend a chord needs its route's queue to send
    chord_unlock; without it every chord raises KeyError: 'queue'.

    Evidence: *worker*: a chord of probes completes through the database backend."""
    from celery import signature

    probe = c.probes.probe(c.probes.home)
    header = [signature(probe, args=(f"part {i}",), app=c.app) for i in range(2)]
    since = time.monotonic()
    joined = send_chord(c, header, signature(probe, args=("body",), app=c.app))
    ended = c.events.wait_for(joined.id, DONE)
    row = c.row(joined.id)
    if ended is None or row is None or row["status"] != "SUCCESS":
        unlocks = c.events.published(CHORD_UNLOCK, since)
        unlock = c.events.story(unlocks[0].task_id) if unlocks else "never published"
        fail(saw=f"the chord's body ended {row_text(row)}: {c.events.story(joined.id)}; "
                 f"{CHORD_UNLOCK}: {unlock}",
             needs="chords that complete", fix=f"configure the app with {TOOLBOX}")


@check("chord", phase=Phase.WITH_WORKER)
def failed_part_reaches_the_body_errback(c: AppState, _: Any) -> None:
    """When a chord's part fails, the platform hears of it only through the body's
    errback (an e-mail task in another worker): lost, the user waits forever.

    Evidence: *worker*: a chord whose second part fails: the part's FAILURE row, the
    body's FAILURE row, and the body's errback (a task of another worker) once in its
    queue and once in the monitor."""
    from celery import signature

    home = c.probes.home
    errback = signature(ELSEWHERE_ERRBACK, app=c.app)
    parts = [signature(c.probes.probe(home), args=("part",), app=c.app),
             signature(c.probes.failing(home), app=c.app)]
    body = signature(c.probes.probe(home), args=("body",), app=c.app)
    body.link_error(errback)
    since = time.monotonic()
    joined = send_chord(c, parts, body)
    failing_id = joined.parent.results[1].id if joined.parent is not None else None
    # chord_unlock marks the body failed and sends its errback as it finds the
    # failed part: the errback's publish is the event to wait for.
    sent = c.events.wait_for_publish(ELSEWHERE_ERRBACK, since)
    if sent is not None:
        # ...then stores the body's FAILURE, and its run ends.
        for unlock in c.events.published(CHORD_UNLOCK, since)[:1]:
            c.events.wait_for(unlock.task_id, DONE, since=sent.at)
    part_row = c.row(failing_id) if failing_id else None
    body_row = c.row(joined.id)
    problems = []
    if part_row is None or part_row["status"] != "FAILURE":
        problems.append(f"the failed part's row is {row_text(part_row)}")
    if body_row is None or body_row["status"] != "FAILURE":
        problems.append(f"the body's row is {row_text(body_row)}")
    if sent is None:
        problems.append(f"the body's errback was never sent within "
                        f"{events.ROUND_TRIP_TIMEOUT:.0f} s (body: {c.events.story(joined.id)})")
    else:
        target = c.routed_queue(ELSEWHERE_ERRBACK)
        in_queue = c.take(target, sent.task_id) if target is not None else []
        in_monitor = c.in_monitor(sent.task_id)
        if len(in_queue) != 1 or len(in_monitor) != 1:
            problems.append(f"the errback reached its queue {target!r} {len(in_queue)} times "
                            f"and {c.topology.platform_queue} {len(in_monitor)} times")
    if problems:
        fail(saw="; ".join(problems),
             needs="a failed part recorded, the body marked FAILURE, and the body's errback "
                   "(a task of another worker) sent once to its queue and once to the monitor",
             fix=f"configure the app with {TOOLBOX} (its router sends each task to the queue "
                 "of its prefix, and to the monitor)")
