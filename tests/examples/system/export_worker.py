"""The export worker: runs export.* (and Celery's own tasks, in 'celery')."""

from system_base import make_app

app = make_app("export_worker")


@app.task(name="export.project")
def export_project(n):
    return n * 2
