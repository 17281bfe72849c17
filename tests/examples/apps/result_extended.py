from celery import Celery

from cadasta_toolbox.config import Config

# Celery's extended results: six more columns the platform's Result table
# never had.
app = Celery("result_extended")
app.config_from_object(Config(result_extended=True))


@app.task(name="export.project")
def export_project(project_id):
    return project_id
