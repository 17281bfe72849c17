"""A worker that keeps its results in a schema of its own: the platform's
Result model reads celery_taskmeta where its search path finds it (public)."""

from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("own_results_schema")
app.config_from_object(Config(database_table_schemas={"task": "worker_results",
                                                      "group": "worker_results"}))


@app.task(name="export.project")
def export_project(n):
    return n * 2
