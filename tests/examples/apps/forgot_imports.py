"""A worker whose tasks live in forgot_imports_tasks.py, a module nothing
imports when the worker starts (no ``imports``, no ``include``)."""

from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("forgot_imports")
app.config_from_object(Config(QUEUES=("export",)))
