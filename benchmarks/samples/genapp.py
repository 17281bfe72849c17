"""A generated worker built with the toolbox: CADASTA_BENCH_QUEUES work queues
(q0, q1, ...) and CADASTA_BENCH_TASKS trivial tasks spread over them in turn,
each named ``<queue>.task<i>``."""

import os

from celery import Celery

from cadasta_toolbox.config import Config

QUEUE_COUNT = int(os.environ.get("CADASTA_BENCH_QUEUES", "3"))
TASK_COUNT = int(os.environ.get("CADASTA_BENCH_TASKS", "1000"))
QUEUES = tuple(f"q{n}" for n in range(QUEUE_COUNT))

app = Celery("genapp")
app.config_from_object(Config(QUEUES=QUEUES))


def _register(name):
    @app.task(name=name)
    def trivial(n=0):
        return n


for i in range(TASK_COUNT):
    _register(f"{QUEUES[i % QUEUE_COUNT]}.task{i}")
