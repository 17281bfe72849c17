"""Task messages as they sit in SQS, decoded from kombu's and Celery's envelopes."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any


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

    @property
    def task(self) -> str | None:
        return self.headers.get("task")

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


def decode(queue: str, sqs_body: str) -> TaskMessage:
    """Decode an SQS message body (kombu's optionally base64'd JSON envelope)."""
    try:
        envelope = json.loads(_maybe_b64(sqs_body))
    except ValueError as exc:
        return TaskMessage(queue, {}, {}, None, None, None, {"body": sqs_body},
                           decode_error=f"SQS body is not a kombu envelope: {exc}")
    headers = envelope.get("headers") or {}
    properties = envelope.get("properties") or {}
    body = envelope.get("body", "")
    error = None
    args = kwargs = embed = None
    try:
        if properties.get("body_encoding") == "base64":
            body = base64.b64decode(body)
        if envelope.get("content-type") != "application/json":
            raise ValueError(f"content type {envelope.get('content-type')!r} "
                             "is not application/json")
        payload = json.loads(body)
        if not (isinstance(payload, list) and len(payload) == 3):
            raise ValueError("body is not [args, kwargs, embed] (task protocol 2)")
        args, kwargs, embed = payload
    except (ValueError, TypeError, binascii.Error) as exc:
        error = str(exc)
    return TaskMessage(queue, headers, properties, args, kwargs, embed, envelope,
                       decode_error=error)
