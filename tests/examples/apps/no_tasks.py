"""A worker configured with the toolbox that defines no task at all."""

from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("no_tasks")
app.config_from_object(Config())
