"""Chords of a single task keep their callbacks and errbacks (celery/celery#3317,
#3709, #3597 dropped them): pinned on the Celery this project supports."""

from celery import chord, signature


def sig(app, name, *args):
    return signature(name, args=args, app=app)


def test_a_single_task_chord_runs_its_body_callback(cadasta_app, cadasta_result_db,
                                                    cadasta_worker):
    callback = signature("msg.email", args=("done@example.com",), app=cadasta_app,
                         immutable=True)
    callback_id = callback.freeze().id
    body = sig(cadasta_app, "export.project")
    body.link(callback)
    result = chord([sig(cadasta_app, "export.project", 1)], app=cadasta_app)(body)
    assert cadasta_result_db.wait_for_row(result.id, timeout=60)["status"] == "SUCCESS"
    assert cadasta_result_db.wait_for_row(callback_id, timeout=60)["status"] == "SUCCESS"


def test_a_single_task_chord_whose_task_fails_runs_the_body_errback(
        cadasta_app, cadasta_result_db, cadasta_worker):
    errback = signature("msg.email", args=("failed@example.com",), app=cadasta_app,
                        immutable=True)
    errback_id = errback.freeze().id
    body = sig(cadasta_app, "export.project")
    body.link_error(errback)
    result = chord([sig(cadasta_app, "export.broken")], app=cadasta_app)(body)
    assert cadasta_result_db.wait_for_row(result.id, timeout=60)["status"] == "FAILURE"
    assert cadasta_result_db.wait_for_row(errback_id, timeout=60)["status"] == "SUCCESS"
