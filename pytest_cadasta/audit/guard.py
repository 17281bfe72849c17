"""While an audit runs, every call this process makes to SQS (or SNS, kombu's
fan-out) that could change the deployment is refused before it leaves: only
List* and Get* calls go out, whoever makes them (the audit, or an app that
declares its queues while it is imported)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pytest_cadasta.basics.errors import WouldChange

#: The services whose every other call is refused (botocore's service ids).
GUARDED_SERVICES = ("sqs", "sns")
#: The calls that only read.
READING = ("List", "Get")


def _named(params: Any) -> str:
    """The queue (or topic) a request names, for the message; '' if none."""
    body = params.get("body") if isinstance(params, dict) else None
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body or "{}")
        except ValueError:
            body = None
    if not isinstance(body, dict):
        return ""
    for key in ("QueueName", "QueueUrl", "Name", "TopicArn"):
        if isinstance(body.get(key), str):
            return f" ({key}={body[key]})"
    return ""


def refuse_changes(model: Any, params: Any = None, **kwargs: Any) -> None:
    """botocore's before-call handler: a call that is not a List* or Get* raises."""
    if model.name.startswith(READING):
        return
    service = model.service_model.service_id.hyphenize()
    raise WouldChange(
        f"refused {service.upper()} {model.name}{_named(params)}: --cadasta-audit reads "
        "the deployment and changes nothing (only List* and Get* calls go out)")


@contextmanager
def read_only_aws() -> Iterator[None]:
    """Every botocore session made meanwhile (kombu's and boto3's make one per
    client) refuses what ``refuse_changes`` refuses. botocore registers its
    ``BUILTIN_HANDLERS`` on each new session: the guard rides along."""
    import botocore.handlers

    specs = [(f"before-call.{service}", refuse_changes) for service in GUARDED_SERVICES]
    botocore.handlers.BUILTIN_HANDLERS.extend(specs)
    try:
        yield
    finally:
        for spec in specs:
            if spec in botocore.handlers.BUILTIN_HANDLERS:
                botocore.handlers.BUILTIN_HANDLERS.remove(spec)
