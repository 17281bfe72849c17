"""The messaging worker, wrong in one way: its results go to a database of its
own, where the platform never reads them."""

from system_base import make_app

app = make_app("msg_worker", RESULT_DB_NAME="msg_results")


@app.task(name="msg.email")
def email(to):
    return f"sent to {to}"
