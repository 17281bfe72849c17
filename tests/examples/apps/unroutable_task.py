from handwritten import make_app

app = make_app("unroutable_task")


@app.task(name="report.generate")
def generate_report(project_id):
    return project_id
