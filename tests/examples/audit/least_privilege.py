"""A worker deployed with least privilege on SQS: it may neither list nor
create queues (kombu's predefined_queues name each queue's URL) and signs with
a role it assumes (sts_role_arn). The URLs are the deployment's, read from the
environment as an operator's configuration would give them."""

import os

from celery import Celery

from cadasta_toolbox.config import Config

PREFIX = os.environ["QUEUE_PREFIX"]
ACCOUNT_URL = f"{os.environ['AWS_ENDPOINT_URL_SQS']}/123456789012"
NAMES = os.environ.get("PREDEFINED", "celery,export,msg,platform.fifo").split(",")

app = Celery("least_privilege")
app.config_from_object(Config(QUEUES=("export", "msg"), broker_transport_options={
    "region": "us-west-2", "queue_name_prefix": f"{PREFIX}-",
    "sts_role_arn": "arn:aws:iam::123456789012:role/cadasta-worker",
    "predefined_queues": {f"{PREFIX}-{name}": {"url": f"{ACCOUNT_URL}/{PREFIX}-{name}"}
                          for name in NAMES},
}))


@app.task(name="export.project", acks_late=True, time_limit=600)
def export_project(project_id):
    return project_id


@app.task(name="msg.email", acks_late=True, time_limit=60)
def email(to):
    return to
