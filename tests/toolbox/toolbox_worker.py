"""A worker built with Config, for test_worker.py to start as `celery -A toolbox_worker worker`.

Configured as production configures one, from the environment (CELERY_BROKER_URL,
SETUP_FILE_LOGGING, SENTRY_DSN, ...). When TOOLBOX_TEST_SENTRY_EVENTS names a
file, the Sentry events the toolbox's own ``sentry_sdk.init`` would send are
written there instead: nothing leaves the machine.
"""

import json
import os

from celery import Celery

from cadasta_toolbox.config import Config

SENTRY_EVENTS = os.environ.get("TOOLBOX_TEST_SENTRY_EVENTS")

if SENTRY_EVENTS:
    import sentry_sdk
    from sentry_sdk.transport import Transport

    class RecordingTransport(Transport):
        """Writes each event as a JSON line instead of sending it."""

        def capture_envelope(self, envelope):
            with open(SENTRY_EVENTS, "a", encoding="utf-8") as events:
                for item in envelope.items:
                    event = item.get_event()
                    if event is not None:
                        events.write(json.dumps(event, default=str) + "\n")

    toolbox_init = sentry_sdk.init

    def init_recording(*args, **kwargs):
        return toolbox_init(*args, transport=RecordingTransport(), **kwargs)

    sentry_sdk.init = init_recording


app = Celery("toolbox_worker")
app.config_from_object(Config(result_backend=None))


@app.task(name="export.succeed")
def succeed(n):
    return n


@app.task(name="export.fail")
def fail():
    raise ValueError("export failed on purpose")
