"""A second worker of the deployment, with a role of its own (MAIL_DB_USER,
MAIL_DB_PASS) on the same result database."""

import os

from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("mail_worker")
app.config_from_object(Config(QUEUES=("export", "msg"),
                              RESULT_DB_USER=os.environ["MAIL_DB_USER"],
                              RESULT_DB_PASS=os.environ["MAIL_DB_PASS"]))


@app.task(name="msg.send", acks_late=True, time_limit=30)
def send(to):
    return to
