"""The deployed worker, with an acks_late task that has no time limit."""

from audited import app


@app.task(name="export.archive", acks_late=True)
def archive(project_id):
    return project_id
