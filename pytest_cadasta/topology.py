"""What the user's app says about its queues, read the way the platform reads it."""

from __future__ import annotations

from typing import Any

DEFAULT_PLATFORM_QUEUE = "platform.fifo"
DEFAULT_REGION = "us-east-1"


def platform_queue_name(app: Any) -> str:
    """``app.conf.PLATFORM_QUEUE_NAME`` when the app sets it, else platform.fifo."""
    name = app.conf.get("PLATFORM_QUEUE_NAME")
    return DEFAULT_PLATFORM_QUEUE if name is None else name


def work_queue_names(app: Any) -> list[str]:
    """``app.conf.QUEUES`` when set, else every configured queue but the
    platform queue; ``celery`` always (Celery's own tasks go there)."""
    platform = platform_queue_name(app)
    declared = app.conf.get("QUEUES")
    if declared is None:
        declared = [name for name in app.amqp.queues if name != platform]
    names = ["celery"]
    names += [name for name in declared if name not in names and name != platform]
    return names


def transport_options(app: Any) -> dict:
    return dict(app.conf.broker_transport_options or {})


def region(app: Any) -> str:
    return transport_options(app).get("region") or DEFAULT_REGION


def queue_name_prefix(app: Any) -> str:
    return transport_options(app).get("queue_name_prefix") or ""
