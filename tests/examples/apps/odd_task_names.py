"""Task names a router by prefix must cope with: no dot at all, accented
letters (routed to 'export' like any other) and a prefix in Chinese script,
which no SQS queue can be named after."""

from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("odd_task_names")
app.config_from_object(Config())


@app.task(name="cleanup")
def cleanup():
    return "cleaned"


@app.task(name="export.résumé")
def export_resume(n):
    return n


@app.task(name="导出.任务")
def export_in_chinese(n):
    return n
