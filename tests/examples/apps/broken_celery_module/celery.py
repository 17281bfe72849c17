from celery import Celery
from kombu import NoSuchThing  # noqa: F401  (kombu has none: an ImportError)

app = Celery("broken_celery_module")
