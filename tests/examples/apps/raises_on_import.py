from celery import Celery

app = Celery("raises")
SETTINGS = {}
app.conf.broker_url = SETTINGS["broker_url"]
