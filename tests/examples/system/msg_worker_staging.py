"""The messaging worker, wrong in one way: its SQS queues carry a prefix the
other apps do not use, so what they send for it lands in queues it never reads."""

from system_base import make_app

app = make_app("msg_worker", QUEUE_PREFIX="staging")


@app.task(name="msg.email")
def email(to):
    return f"sent to {to}"
