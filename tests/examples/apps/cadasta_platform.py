"""A producer shaped like the Cadasta platform's own Celery app (written for
these tests): a custom AMQP class whose ``send_task_message`` runs through a
circuit breaker that opens on the first broker failure and sets the app up
lazily, and set-up tried through the same breaker while the module is imported.
The sample apps next to it each call ``make_platform_app``."""

import functools
import logging

from celery import Celery
from celery.app.amqp import AMQP

from cadasta_toolbox.app import setup_app
from cadasta_toolbox.config import Config

logger = logging.getLogger(__name__)


class BreakerOpen(Exception):
    """The breaker refused the call: an earlier one failed."""


class Breaker:
    """Opens on the first failure; once open, every call raises ``BreakerOpen``."""

    def __init__(self):
        self.opened_by = None

    def __call__(self, func):
        @functools.wraps(func)
        def guarded(*args, **kwargs):
            if self.opened_by is not None:
                raise BreakerOpen(f"open since {self.opened_by!r}")
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                self.opened_by = exc
                raise
        return guarded


def make_platform_app(name, setup_fails=False):
    breaker = Breaker()

    class BreakerAMQP(AMQP):
        @breaker
        def send_task_message(self, *args, **kwargs):
            if not getattr(self.app, "is_set_up", False):
                setup_app(self.app, throw=True)
            return super().send_task_message(*args, **kwargs)

    app = Celery(name, amqp=BreakerAMQP)
    app.config_from_object(Config(QUEUES=("export", "msg"), SETUP_FILE_LOGGING=False,
                                  SETUP_SENTRY_LOGGING=False))

    def set_up():
        if setup_fails:
            raise ConnectionError("the broker refused the connection")
        setup_app(app, throw=True)

    try:  # the platform sets itself up as it is imported
        breaker(set_up)()
    except Exception:
        logger.exception("setting up the Celery app failed")
    return app
