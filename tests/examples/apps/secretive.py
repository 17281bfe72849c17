"""A worker whose settings hold a password in every place one can hide: the
broker URL, the result backend (through RESULT_DB_PASS) and the transport
options; one of its routes is wrong, so a check fails and prints its evidence."""

from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("secretive")
app.config_from_object(Config(
    QUEUES=("export",),
    RESULT_DB_PASS="pw-result-5e1",
    broker_url="sqs://AKIAEXAMPLE:pw-broker-7a2@",
))


@app.task(name="report.generate")
def generate(project_id):
    return project_id
