"""Masking of credentials, so no password reaches a repr, a log or a report."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["mask_secrets", "mask_url"]

MASK = "**"
SECRET_WORDS = ("password", "passwd", "secret", "token", "credential", "_pass")


#: scheme://user:password@host... The password runs to the last '@' before the
#: path: it may hold '/', '#' or '?', which urlsplit (and so kombu's
#: maybe_sanitize_url) would take for the start of a path, query or fragment,
#: and print the password. Hence a local version.
_CREDENTIALS = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/]*):(?P<password>.*)@"
                          r"(?P<host>[^@]*)$", re.DOTALL)


def mask_url(url: str) -> str:
    """``url`` with the password replaced by ``**`` (unchanged if it has none)."""
    match = _CREDENTIALS.match(url)
    if match is None or not match.group("password"):
        return url
    return f"{match.group('head')}:{MASK}@{match.group('host')}"


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
