"""predefined_queues without the monitor queue: in production every publish
raises UndefinedQueueException (kombu neither lists nor creates queues)."""

from celery import Celery

from cadasta_toolbox.config import Config

ACCOUNT = "https://sqs.us-west-2.amazonaws.com/210987654321"
QUEUES = ("dev-celery", "dev-msg", "dev-export")

app = Celery("predefined_no_monitor")
app.config_from_object(Config(broker_transport_options={
    "region": "us-west-2", "queue_name_prefix": "dev-",
    "predefined_queues": {name: {"url": f"{ACCOUNT}/{name}"} for name in QUEUES},
}))


@app.task(name="export.project")
def export_project(n):
    return n * 2
