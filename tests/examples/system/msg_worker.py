"""The messaging worker: runs msg.*."""

from system_base import make_app

app = make_app("msg_worker")


@app.task(name="msg.email")
def email(to):
    return f"sent to {to}"
