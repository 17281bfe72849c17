"""The platform's sync-tasks rules, as its code applies them to a message of
the monitor queue: what it would record in its Task table, or why it cannot.

Our own reading of Cadasta/cadasta-platform's ``tasks`` app (its consumer and
its ``BackgroundTask`` model): the consumer accepts json and pickle only; it
reads the headers ``id``, ``task``, ``parent_id`` and ``root_id``; decodes the
body to (args, kwargs, embed); copies the headers ``eta``, ``expires``,
``retries`` and ``timelimit`` into the properties when they are set; and
gets-or-creates one row by ``task_id``. Whatever fails is logged and the
message acknowledged: that task is lost to the platform.

Not played: the model's ``type`` choices (the task names the platform app
registers). Whether Django applies them depends on the platform's import
order; applied, they would refuse every ``celery.*`` task and every task the
platform does not register itself. ``options`` hold the message's properties
as its envelope carries them (kombu adds its delivery details on a real
consumer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_cadasta.basics.messages import ACCEPTED, SERIALIZER_FIX, TaskMessage

#: The headers it reads, each by indexing: a missing one loses the task.
HEADERS = ("id", "task", "parent_id", "root_id")
#: The headers it copies into the properties (stored as the task's options).
OPTION_HEADERS = ("eta", "expires", "retries", "timelimit")
#: Its Task table's limits (``tasks_backgroundtask``).
TASK_ID_LENGTH = 155
TYPE_LENGTH = 128
RELATED_OBJECT_ID_LENGTH = 24


@dataclass(frozen=True)
class Record:
    """What the platform would store of one task message (one Task row)."""

    task_id: str
    type: str
    input: dict
    options: dict
    parent_id: str | None
    root_id: str | None
    creator_id: Any = None
    related_content_type_id: Any = None
    related_object_id: Any = None


@dataclass(frozen=True)
class Refusal:
    """A task message the platform could not record: lost to it for good."""

    task_id: str | None
    name: str | None
    #: Why, as the platform's own code would fail on it.
    reason: str
    #: The one-line change that lets the platform record it.
    fix: str
    headers: dict = field(default_factory=dict, repr=False)


def read(message: TaskMessage) -> Record | Refusal:
    """What the platform's sync-tasks makes of ``message``: the Task row it
    would store, or why it stores none. Values a column refuses (lengths, JSON,
    parent and root) are the database's to say: ``Platform`` inserts the row."""
    headers = message.headers or {}
    task_id, name = headers.get("id"), headers.get("task")
    envelope = message.raw or {}

    def refuse(reason: str, fix: str) -> Refusal:
        return Refusal(task_id, name, reason, fix, headers)

    if "body" not in envelope or "headers" not in envelope:
        return refuse(message.decode_error or "it is not a kombu message",
                      "send task messages through Celery (kombu's SQS transport)")
    content_type = envelope.get("content-type")
    if content_type not in ACCEPTED:
        return refuse(f"its body is {content_type!r}, which the platform's consumer does "
                      "not accept (json and pickle only): acknowledged undecoded",
                      SERIALIZER_FIX)
    if message.decode_error is not None:
        if message.decode_error.startswith("body is not"):
            return refuse(f"its {message.decode_error}", "task_protocol = 2 (Celery's default)")
        return refuse(f"its {ACCEPTED[content_type]} body does not decode: "
                      f"{message.decode_error}", SERIALIZER_FIX)
    missing = [h for h in HEADERS if h not in headers]
    if missing:
        return refuse(f"it has no header {', '.join(map(repr, missing))} (sync-tasks reads "
                      f"{', '.join(HEADERS)})", "task_protocol = 2 (Celery's default)")
    args, kwargs = message.args, message.kwargs
    properties = dict(message.properties or {})
    properties.update({key: value for key, value in headers.items()
                       if key in OPTION_HEADERS and value not in (None, [None, None])})
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
        return refuse(f"its input is args {type(args).__name__}, kwargs "
                      f"{type(kwargs).__name__} (the Task table's input holds a list and a "
                      "dict)", "send args as a list or tuple and kwargs as a dict")
    if headers["root_id"] is None:
        return refuse("its root_id is None (the Task table's root may not be null)",
                      "task_protocol = 2 (Celery sets root_id)")
    for column, value, limit, fix in (
            ("type (the task's name)", headers["task"], TYPE_LENGTH,
             f"rename the task within {TYPE_LENGTH} characters"),
            ("task_id", headers["id"], TASK_ID_LENGTH,
             f"task ids within {TASK_ID_LENGTH} characters (Celery's own are 36)"),
            ("related_object_id", properties.get("related_object_id"),
             RELATED_OBJECT_ID_LENGTH,
             f"related_object_id within {RELATED_OBJECT_ID_LENGTH} characters (the platform's "
             "ids)")):
        if isinstance(value, str) and len(value) > limit:
            return refuse(f"its {column} has {len(value)} characters; the Task table holds "
                          f"{limit}", fix)
    return Record(task_id=headers["id"], type=headers["task"],
                  input={"args": list(args), "kwargs": kwargs}, options=properties,
                  parent_id=headers["parent_id"], root_id=headers["root_id"],
                  creator_id=properties.get("creator_id"),
                  related_content_type_id=properties.get("related_content_type_id"),
                  related_object_id=properties.get("related_object_id"))
