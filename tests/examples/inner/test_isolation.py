"""Messages left behind by one test are gone in the next."""


def test_leaves_messages_behind(cadasta_app, cadasta_sqs):
    cadasta_app.send_task("msg.email", args=("a@example.com",))
    assert len(cadasta_sqs.messages("msg", delete=False)) == 1


def test_sees_none_of_them(cadasta_app, cadasta_sqs):
    assert cadasta_sqs.messages("msg") == []
    assert cadasta_sqs.messages("platform.fifo") == []
