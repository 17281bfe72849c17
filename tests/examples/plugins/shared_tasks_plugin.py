"""Stands in for pytest-celery's entry point (pytest_celery.plugin, 1.3.0) as
far as an app under test can tell: it re-exports celery.contrib.pytest's
fixtures, and importing it defines shared test tasks (pytest-celery's live in
pytest_celery.vendors.worker.tasks), which Celery adds to every app, the
user's too."""

from celery import shared_task
from celery.contrib.pytest import *  # noqa: F403


@shared_task
def add(x, y):
    return x + y


@shared_task
def ping():
    return "pong"
