"""Masking of credentials, so no password reaches a repr, a log or a report."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kombu.utils.url import maybe_sanitize_url

__all__ = ["mask_secrets", "mask_url"]

MASK = "**"
SECRET_WORDS = ("password", "passwd", "secret", "token", "credential", "_pass")


def mask_url(url: str) -> str:
    """``url`` with the password replaced by ``**``.

    kombu's ``maybe_sanitize_url`` does the masking; a URL without a password
    is returned as it is, since kombu would rewrite it (``sqs://`` becomes
    ``sqs:///``).
    """
    try:
        if not urlsplit(url).password:
            return url
    except ValueError:
        return url
    return maybe_sanitize_url(url, mask=MASK)


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def mask_secrets(name: str, value: Any) -> Any:
    """``value`` fit to show: URLs without passwords, secret-named entries masked."""
    if isinstance(value, str):
        if is_secret_name(name) and value:
            return MASK
        return mask_url(value) if "://" in value else value
    if isinstance(value, dict):
        return {key: mask_secrets(str(key), item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_secrets(name, item) for item in value)
    return value
