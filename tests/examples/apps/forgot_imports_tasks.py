from forgot_imports import app


@app.task(name="export.project")
def export_project(project_id):
    return project_id
