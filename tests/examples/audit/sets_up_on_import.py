"""A producer that declares its exchange and queues while it is imported, as
the platform does: on a deployment missing a queue, that would create it."""

from celery import Celery

from cadasta_toolbox.app import setup_app
from cadasta_toolbox.config import Config

app = Celery("sets_up_on_import")
app.config_from_object(Config(QUEUES=("export", "msg")))
setup_app(app)
