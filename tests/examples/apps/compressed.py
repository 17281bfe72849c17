from celery import Celery

from cadasta_toolbox.config import Config

# Task messages compressed with gzip: kombu's consumer (the platform's too)
# decompresses by the message's header before it decodes.
app = Celery("compressed")
app.config_from_object(Config(task_compression="gzip"))


@app.task(name="export.project")
def export_project(project_id):
    return project_id
