"""The platform, wrong in one way: it registers export.project too, and a route
of its own sends it to 'msg', where the export worker never sees it."""

from system_base import make_app

app = make_app("platform")
app.conf.task_routes = ({"export.project": {"queue": "msg"}}, *app.conf.task_routes)


@app.task(name="export.project")
def export_project(n):
    return n * 2
