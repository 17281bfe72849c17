"""The platform, wrong in one way: it registers a task for the 'report' queue,
which no worker of the system consumes."""

from system_base import make_app

app = make_app("platform")


@app.task(name="report.build")
def build_report(project):
    return project
