from celery import Celery

from cadasta_toolbox.config import Config

# Task messages in pickle, which the platform's sync-tasks accepts.
app = Celery("pickle_serializer")
app.config_from_object(Config(task_serializer="pickle",
                              accept_content=["json", "pickle"]))


@app.task(name="export.project")
def export_project(project_id):
    return project_id
