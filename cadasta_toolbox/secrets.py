"""Masking of credentials, so no password reaches a repr, a log or a report."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["mask_secrets", "mask_url"]

MASK = "**"
SECRET_WORDS = ("password", "passwd", "secret", "token", "credential", "_pass")


def mask_url(url: str) -> str:
    """``url`` with the password replaced by ``**`` (unchanged if it has none)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    netloc = parts.netloc
    userinfo, _, hostinfo = netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostinfo}"))


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
