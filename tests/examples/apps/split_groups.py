"""A worker whose router sends each task in a FIFO message group of its own
name, for throughput: SQS then keeps the monitor's order only within each
task name, and the platform may read a child before its parent."""

from celery import Celery

from cadasta_toolbox.config import Config

config = Config(QUEUES=("export",))
toolbox_route = config["task_routes"][0]


def route_with_a_group_per_task(name, args, kwargs, options, task=None, **kw):
    return {**toolbox_route(name, args, kwargs, options, task), "MessageGroupId": name}


app = Celery("split_groups")
app.config_from_object(config)
app.conf.task_routes = (route_with_a_group_per_task,)


@app.task(name="export.project")
def export_project(n):
    return n * 2
