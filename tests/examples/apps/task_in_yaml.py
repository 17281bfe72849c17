from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("task_in_yaml")
app.config_from_object(Config(accept_content=["json", "yaml"]))


@app.task(name="export.project")
def export_project(project_id):
    return project_id


# This one task is sent in YAML, which the platform's sync-tasks does not accept.
@app.task(name="msg.email", serializer="yaml")
def email(to):
    return to
