from celery import Celery

from cadasta_toolbox.config import Config

# Task messages in YAML, which the platform's sync-tasks does not accept.
app = Celery("yaml_serializer")
app.config_from_object(Config(task_serializer="yaml", accept_content=["json", "yaml"]))


@app.task(name="export.project")
def export_project(project_id):
    return project_id
