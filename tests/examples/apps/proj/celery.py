"""Laid out as 'celery -A proj' expects: the app in proj/celery.py, its tasks
in proj/tasks.py, imported through ``imports`` as the worker imports them."""

from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("proj")
app.config_from_object(Config(QUEUES=("export",), imports=("proj.tasks",)))
