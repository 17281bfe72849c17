from celery import Celery

from cadasta_toolbox.config import Config

# Results in json: Celery 5.7 and later store them so, and the platform, which
# unpickles every result row, cannot read one (earlier Celery pickled them all).
app = Celery("json_results")
app.config_from_object(Config(result_serializer="json", result_accept_content=["json"]))


@app.task(name="export.project")
def export_project(project_id):
    return project_id
