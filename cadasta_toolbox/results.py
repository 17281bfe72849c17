"""Results stored the way the platform reads them.

The platform's Result model reads ``celery_taskmeta.result`` with
``pickle.loads`` and nothing else. Celery before 5.7 pickled every result into
that column whatever ``result_serializer`` said; Celery 5.7 stores the bytes of
``result_serializer`` instead (json by default), which the platform cannot read.

``RESULT_SERIALIZER`` gives every Celery the bytes the platform reads: a
pickle of the JSON-safe form Celery prepares for a serializer other than
``pickle`` (a value as the task returned it, an exception as its type, module
and message), so the platform never needs to import the worker's own code to
read a failure. Importing this module registers it with kombu.
"""

from __future__ import annotations

import pickle
from typing import Any

from kombu.serialization import register

__all__ = ["RESULT_CONTENT_TYPE", "RESULT_SERIALIZER"]

#: The serializer's name, for ``result_serializer`` and ``result_accept_content``.
RESULT_SERIALIZER = "cadasta-pickle"
#: Its content type: its own, so kombu's ``pickle`` (and whatever accepts it)
#: stays as it is.
RESULT_CONTENT_TYPE = "application/x-cadasta-result"


def _dumps(value: Any) -> bytes:
    # Protocol 2 reads on every Python the platform has run on.
    return pickle.dumps(value, protocol=2)


register(RESULT_SERIALIZER, _dumps, pickle.loads, content_type=RESULT_CONTENT_TYPE,
         content_encoding="binary")
