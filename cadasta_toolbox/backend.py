"""Celery's database result backend, reading stored results as data only.

Celery 5.7 reads the ``result`` column with the app's ``result_serializer``,
and when that refuses a row that starts like a pickle it reads the row again
with a bare ``pickle.loads`` (rows of Celery before 5.7): whatever refused a
poisoned row, that second read runs it. This backend reads such a row with
``cadasta_toolbox.results.load_data`` instead, which loads data or refuses by
name. ``Config`` selects it for ``db+`` URLs (Celery's ``override_backends``).

Celery before 5.7 reads the column through SQLAlchemy's ``PickleType``, a bare
``pickle.loads`` this backend does not replace: upgrade to read results
safely (the manual's security page, docs/security.rst, says what each reader
trusts).
"""

from __future__ import annotations

from typing import Any

from celery.backends.database import DatabaseBackend
from kombu.utils.encoding import ensure_bytes

from cadasta_toolbox.results import ResultRefused, load_data

__all__ = ["ResultBackend"]


class ResultBackend(DatabaseBackend):
    """``DatabaseBackend``, but no stored result is ever read with a bare
    ``pickle.loads``."""

    def _decode_stored_result(self, payload: Any) -> Any:
        if payload is None:
            return payload
        payload = ensure_bytes(payload)
        try:
            return self.decode(payload)
        except ResultRefused:
            raise
        except Exception as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ResultRefused) or payload[:1] != b"\x80":
                raise
            # A row written as a pickle by Celery before 5.7: data, or refused.
            return load_data(payload)
