"""A module with no Celery app in it."""

SETTINGS = {"queues": ("export",)}
