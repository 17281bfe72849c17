from celery import Celery

from cadasta_toolbox.config import Config

app = Celery("long_task_name")
app.config_from_object(Config())

# 159 characters: the platform's Task table holds 128.
LONG = "export." + "project_with_every_layer_and_every_attachment_" * 3 + "x" * 14


@app.task(name=LONG)
def export_everything(project_id):
    return project_id
