"""The apps of a small Cadasta system, written for these tests: the platform
(a producer) and two workers, each configured with the toolbox's Config and
the same QUEUES. The sample modules next to this one each build one app."""

from celery import Celery

from cadasta_toolbox.config import Config

QUEUES = ("export", "msg", "report")


def make_app(name, **settings):
    app = Celery(name, set_as_current=False)
    app.config_from_object(Config(QUEUES=settings.pop("QUEUES", QUEUES), **settings))
    return app
