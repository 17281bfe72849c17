"""Runtime helpers for Celery workers in the Cadasta platform's asynchronous system."""

__version__ = "0.1.0"
