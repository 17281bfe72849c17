"""A worker on Redis: neither its broker nor its result backend is what the
platform reads (each URL holds a password)."""

from celery import Celery

app = Celery("not_sqs", broker="redis://:redis-pw-41c@cache.internal:6379/0",
             backend="redis://:redis-pw-41c@cache.internal:6379/1")


@app.task(name="export.project")
def export_project(project_id):
    return project_id
