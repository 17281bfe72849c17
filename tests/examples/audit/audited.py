"""A worker as it is deployed: the toolbox's Config read from the environment
(QUEUE_PREFIX, RESULT_DB_*, the AWS credentials and endpoint), acks_late tasks
with time limits, and one task that acknowledges early."""

from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("audited")
app.config_from_object(Config(QUEUES=("export", "msg")))


@app.task(name="export.project", acks_late=True, time_limit=600)
def export_project(project_id):
    return project_id


@app.task(name="msg.email", acks_late=True, time_limit=60)
def email(to):
    return to


@app.task(name="export.cleanup")
def cleanup():
    return None
