"""A worker built the recommended way: the toolbox's Config, tasks by prefix."""

from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("toolbox_app")
app.config_from_object(Config())


@app.task(name="export.project")
def export_project(n):
    return n * 2


@app.task(name="msg.email")
def email(to):
    return f"sent to {to}"


@app.task(name="export.broken")
def broken():
    raise ValueError("the export broke")
