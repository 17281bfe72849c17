from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("ignores_a_result")
app.config_from_object(Config())


@app.task(name="export.project")
def export_project(project_id):
    return project_id


# Stores no result: the platform shows it PENDING forever.
@app.task(name="msg.email", ignore_result=True)
def email(to):
    return to
