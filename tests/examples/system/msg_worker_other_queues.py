"""The messaging worker, wrong in one way: its QUEUES lists a queue the other
apps do not know (it was added here and nowhere else)."""

from system_base import QUEUES, make_app

app = make_app("msg_worker", QUEUES=(*QUEUES, "geo"))


@app.task(name="msg.email")
def email(to):
    return f"sent to {to}"
