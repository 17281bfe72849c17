"""A worker whose QUEUES include a name SQS refuses (queue names are ASCII
letters, digits, '-' and '_'): a real worker fails declaring it."""

from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("non_ascii_queue")
app.config_from_object(Config(QUEUES=("导出", "export")))


@app.task(name="export.project")
def export_project(n):
    return n


@app.task(name="导出.任务")
def export_in_chinese(n):
    return n
