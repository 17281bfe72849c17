"""The example worker's own tests, on pytest-cadasta's fixtures: real SQS
semantics (moto's server), a real in-process worker, a real result table."""

from worker.celery import export_project, send_email


def test_email_is_sent_and_its_result_recorded(cadasta_app, cadasta_result_db,
                                               cadasta_worker):
    result = send_email.delay("ana@example.com", "Your export is ready")
    assert result.get(timeout=60, interval=0.05)["sent"] is True
    assert cadasta_result_db.wait_for_row(result.id)["status"] == "SUCCESS"


def test_a_bad_address_fails_with_its_traceback_recorded(cadasta_app, cadasta_result_db,
                                                         cadasta_worker):
    result = send_email.delay("not-an-address", "Hello")
    row = cadasta_result_db.wait_for_row(result.id)
    assert row["status"] == "FAILURE"
    assert "not an e-mail address" in row["traceback"]


def test_export_bundles_every_layer_and_notifies_after_the_bundle(
        cadasta_app, cadasta_sqs, cadasta_result_db, cadasta_worker):
    notify = send_email.si("ana@example.com", "Export finished")
    notified = notify.freeze()
    result = export_project.apply_async(("p1",), link=notify)
    export = result.get(timeout=60, interval=0.05)
    assert export["layers"] == ["parcels", "parties", "relationships"]

    bundle = cadasta_result_db.wait_for_row(export["bundle"], timeout=60)
    assert bundle["status"] == "SUCCESS"
    # The notification was handed on: it runs after the bundle, not after
    # export.project.
    email = cadasta_result_db.wait_for_row(notified.id, timeout=60)
    assert email["status"] == "SUCCESS"
    assert email["date_done"] >= bundle["date_done"]

    seen = [m.task for m in cadasta_sqs.messages("platform.fifo")]
    for name in ("export.project", "export.layer", "celery.chord_unlock",
                 "export.bundle", "msg.email"):
        assert name in seen, f"{name} never reached the platform's monitor queue"
