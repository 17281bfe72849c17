from celery import Celery

from cadasta_toolbox.config import Config

# Results in plain pickle: a failure is stored as its exception object, which
# the platform cannot unpickle without the worker's code.
app = Celery("pickled_exceptions")
app.config_from_object(Config(result_serializer="pickle",
                              result_accept_content=["json", "pickle"]))


class ExportFailed(Exception):
    pass


@app.task(name="export.project")
def export_project(project_id):
    raise ExportFailed(project_id)
