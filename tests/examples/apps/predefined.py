"""A worker run with least privilege on SQS: kombu's predefined_queues name
each queue's URL (the worker may not list or create queues), and it signs
with a role it assumes (sts_role_arn). Its queue URLs name another account;
their names are the app's (prefix included)."""

from celery import Celery

from cadasta_toolbox.config import Config

ACCOUNT = "https://sqs.us-west-2.amazonaws.com/210987654321"
QUEUES = ("dev-celery", "dev-msg", "dev-export", "dev-platform.fifo")

app = Celery("predefined")
app.config_from_object(Config(broker_transport_options={
    "region": "us-west-2", "queue_name_prefix": "dev-",
    "sts_role_arn": "arn:aws:iam::210987654321:role/cadasta-worker",
    "predefined_queues": {name: {"url": f"{ACCOUNT}/{name}"} for name in QUEUES},
}))


@app.task(name="export.project")
def export_project(n):
    return n * 2
