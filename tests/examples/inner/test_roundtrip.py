"""A user's own test with the four fixtures: a real round trip."""


def test_export_round_trip(cadasta_app, cadasta_sqs, cadasta_result_db, cadasta_worker):
    result = cadasta_app.send_task("export.project", args=(21,))
    assert result.get(timeout=60, interval=0.05) == 42
    row = cadasta_result_db.wait_for_row(result.id)
    assert row["status"] == "SUCCESS"
    monitored = cadasta_sqs.messages("platform.fifo")
    assert [(m.task, m.id, m.args) for m in monitored] == [
        ("export.project", result.id, [21])]
    # As SQS handed the copy over: kombu's one group, a place in the queue's order.
    assert monitored[0].group == "default"
    assert int(monitored[0].sqs_attributes["SequenceNumber"]) > 0


def test_failure_is_recorded(cadasta_app, cadasta_result_db, cadasta_worker):
    result = cadasta_app.send_task("export.broken")
    row = cadasta_result_db.wait_for_row(result.id)
    assert row["status"] == "FAILURE"
    assert "the export broke" in row["traceback"]
