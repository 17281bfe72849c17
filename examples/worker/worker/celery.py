"""An example Cadasta worker: project exports and e-mail.

Built on the toolbox: ``Config`` supplies the SQS broker, the topic exchange
that copies every task to the platform's monitor queue, routing by task-name
prefix and the PostgreSQL result backend; ``setup_app`` runs by itself when
the worker starts.
"""

from celery import Celery, chord

from cadasta_toolbox.config import Config
from cadasta_toolbox.followups import extract_followups

app = Celery("worker")
app.config_from_object(Config(QUEUES=("export", "msg")))

LAYERS = ("parcels", "parties", "relationships")


@app.task(bind=True, name="export.project")
def export_project(self, project_id, layers=LAYERS):
    """Export each layer in parallel, then bundle them.

    The bundle runs last, so this task's own callbacks and errbacks (the
    platform's "notify the user" follow-ups) are handed on to it.
    """
    parts = [export_layer.s(project_id, layer) for layer in layers]
    bundle = bundle_export.s(project_id).set(**extract_followups(self))
    bundled = chord(parts)(bundle)
    return {"project": project_id, "layers": list(layers), "bundle": bundled.id}


@app.task(name="export.layer")
def export_layer(project_id, layer):
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}")
    return {"layer": layer, "file": f"{project_id}/{layer}.csv"}


@app.task(name="export.bundle")
def bundle_export(layer_files, project_id):
    return {"project": project_id, "archive": f"{project_id}.zip",
            "files": sorted(item["file"] for item in layer_files)}


@app.task(name="msg.email")
def send_email(to, subject, body=""):
    if "@" not in to:
        raise ValueError(f"not an e-mail address: {to!r}")
    return {"to": to, "subject": subject, "sent": True}
