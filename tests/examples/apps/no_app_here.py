from celery import Celery

worker_app = Celery("one")
other_app = Celery("two")
app_factory = Celery  # a class, not an app
not_an_app = 42
