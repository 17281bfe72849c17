"""A worker built with the toolbox whose every task first waits for a warm-up
that never comes (a lock nobody releases, a pool never filled): no task of it
ever returns."""

import threading

from celery import Celery
from celery.signals import task_prerun

from cadasta_toolbox.config import Config

app = Celery("hangs")
app.config_from_object(Config())
warmed_up = threading.Event()


@task_prerun.connect
def wait_for_warm_up(**kwargs):
    warmed_up.wait()


@app.task(name="export.project")
def export_project(n):
    return n * 2
