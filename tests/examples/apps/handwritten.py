"""A worker configured by hand with plain Celery settings (and the toolbox's
helper that keeps a failed chord's errbacks where the platform records them),
conforming unless a keyword introduces one specific defect. The sample apps
next to it each call ``make_app`` with one defect."""

from celery import Celery, current_task
from celery.signals import before_task_publish, celeryd_after_setup, worker_init
from kombu import Exchange, Queue

from cadasta_toolbox.app import adopt_into_family
from cadasta_toolbox.results import RESULT_SERIALIZER

RESULTS = "db+postgresql+psycopg2://cadasta:hw-pass-7c1@localhost:5432/cadasta"


def make_app(name, exchange_type="topic", platform_key="#", with_platform=True,
             router="declaring", result_backend=RESULTS, track_started=True,
             protect_monitor=True, adopt_errbacks=True):
    exchange = Exchange("tasks", type=exchange_type)
    platform = Queue("platform.fifo", exchange, routing_key=platform_key)
    queues = [Queue(q, exchange, routing_key=q) for q in ("celery", "export", "msg")]
    if with_platform:
        queues.append(platform)

    def declaring_router(task_name, args, kwargs, options, task=None, **kw):
        key = task_name.split(".", 1)[0]
        queue = Queue(key, exchange, routing_key=key)
        return {"queue": queue, "exchange": exchange.name, "routing_key": key,
                "declare": [queue, platform]}

    def forgetful_router(task_name, args, kwargs, options, task=None, **kw):
        key = task_name.split(".", 1)[0]
        return {"queue": Queue(key, exchange, routing_key=key),
                "exchange": exchange.name, "routing_key": key}

    def monitor_only_router(task_name, args, kwargs, options, task=None, **kw):
        key = task_name.split(".", 1)[0]
        return {"queue": Queue(key, exchange, routing_key=key), "exchange": exchange.name,
                "routing_key": key, "declare": [platform]}

    routers = {"declaring": (declaring_router,), "forgetful": (forgetful_router,),
               "monitor_only": (monitor_only_router,), None: None}
    app = Celery(name)
    app.conf.update(
        broker_url="sqs://",
        broker_transport_options={"region": "us-west-2", "queue_name_prefix": "hand-"},
        result_backend=result_backend,
        task_default_exchange=exchange.name,
        task_default_exchange_type=exchange_type,
        task_queues=queues,
        task_routes=routers[router],
        task_track_started=track_started,
        # Each result as the platform reads it (a pickle of nothing of the worker's code).
        result_serializer=RESULT_SERIALIZER,
        result_accept_content=["json", RESULT_SERIALIZER],
    )

    @app.task(name="export.project")
    def export_project(project_id):
        return {"project": project_id}

    @app.task(name="msg.email")
    def email(to):
        return {"to": to}

    @worker_init.connect(weak=False)
    def bound_chord_unlock(sender=None, **kwargs):
        if sender.app is app:
            app.tasks["celery.chord_unlock"].max_retries = 3600

    @celeryd_after_setup.connect(weak=False)
    def leave_the_monitor_alone(sender=None, instance=None, **kwargs):
        if protect_monitor and instance.app is app:
            app.amqp.queues.deselect(["platform.fifo"])

    @before_task_publish.connect(weak=False)
    def keep_errbacks_recorded(sender=None, headers=None, **kwargs):
        if adopt_errbacks and current_task and current_task.app is app:
            adopt_into_family(headers, current_task.request)

    return app
