"""Task messages as they sit in SQS, decoded from kombu's and Celery's envelopes
(the body in json or pickle, the two the platform decodes)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

#: The task Celery sends to wait for a chord's header (a retry of it carries
#: the same id, itself as its parent).
CHORD_UNLOCK = "celery.chord_unlock"


@dataclass(frozen=True)
class TaskMessage:
    """One Celery task message read from an SQS queue."""

    queue: str
    headers: dict
    properties: dict
    args: Any
    kwargs: Any
    embed: Any
    raw: dict = field(repr=False)
    decode_error: str | None = None
    #: What SQS said of the copy as it was received (its system attributes:
    #: ``MessageGroupId`` and ``SequenceNumber`` on a FIFO queue, ...).
    sqs_attributes: dict = field(default_factory=dict, repr=False)

    @property
    def task(self) -> str | None:
        return self.headers.get("task")

    @property
    def group(self) -> str | None:
        """The FIFO message group the copy was sent in (None: not FIFO)."""
        return self.sqs_attributes.get("MessageGroupId")

    @property
    def id(self) -> str | None:
        return self.headers.get("id")


def _maybe_b64(data: str | bytes) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw
    return decoded if decoded.lstrip()[:1] in (b"{", b"[") else raw


#: The body encodings a task message may have that the platform's sync-tasks
#: decodes (kombu's content types, and Celery's serializer names for them).
ACCEPTED = {"application/json": "json", "application/x-python-serialize": "pickle"}
#: The fix for a task message in any other encoding.
SERIALIZER_FIX = ("task_serializer = 'json' (Celery's default) or 'pickle', the two the "
                  "platform's sync-tasks accepts (and accept_content to match)")


def decode(queue: str, sqs_body: str, accept: frozenset[str] = frozenset(ACCEPTED),
           sqs_attributes: dict | None = None) -> TaskMessage:
    """Decode an SQS message body (kombu's optionally base64'd JSON envelope,
    the task's body decompressed as its ``compression`` header says, then
    deserialized if its content type is in ``accept``: json and pickle, as the
    platform accepts them; pickle only from the run's own apps)."""
    try:
        envelope = json.loads(_maybe_b64(sqs_body))
    except ValueError as exc:
        return TaskMessage(queue, {}, {}, None, None, None, {"body": sqs_body},
                           decode_error=f"SQS body is not a kombu envelope: {exc}",
                           sqs_attributes=dict(sqs_attributes or {}))
    headers = envelope.get("headers") or {}
    properties = envelope.get("properties") or {}
    body = envelope.get("body", "")
    content_type = envelope.get("content-type")
    error = None
    args = kwargs = embed = None
    try:
        if properties.get("body_encoding") == "base64":
            body = base64.b64decode(body)
        if content_type not in accept:
            raise ValueError(f"content type {content_type!r} is neither json nor pickle")
        from kombu.compression import decompress
        from kombu.serialization import loads

        if headers.get("compression"):
            body = decompress(body, headers["compression"])
        payload = loads(body, content_type, envelope.get("content-encoding"),
                        accept=set(accept))
        if not (isinstance(payload, (list, tuple)) and len(payload) == 3):
            raise ValueError("body is not [args, kwargs, embed] (task protocol 2)")
        args, kwargs, embed = payload
        if isinstance(args, tuple):
            args = list(args)  # as json has it
    except Exception as exc:  # kombu's DecodeError, pickle's and binascii's errors
        error = str(exc) or type(exc).__name__
    return TaskMessage(queue, headers, properties, args, kwargs, embed, envelope,
                       decode_error=error, sqs_attributes=dict(sqs_attributes or {}))
