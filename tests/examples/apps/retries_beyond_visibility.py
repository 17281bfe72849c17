"""A worker whose export retries after ten minutes while its queues hide a
received message for only five: SQS hands the held retry to another worker,
and the export runs twice."""

from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("retries_beyond_visibility")
app.config_from_object(Config(QUEUES=("export",), broker_transport_options={
    "region": "us-west-2", "queue_name_prefix": "dev-", "visibility_timeout": 300}))


@app.task(name="export.project", bind=True, default_retry_delay=600)
def export_project(self, n):
    return n * 2
