"""Throughput through pytest-cadasta's fixtures, copied as test_throughput.py
next to genapp.py: send CADASTA_BENCH_SEND tasks, wait until the worker has
run them all, confirm every SUCCESS row (the time from the first send to that
confirmation is the figure), then confirm every task's one copy in the monitor
queue. The figures go to CADASTA_BENCH_OUT as JSON, written before asserting."""

import json
import os
import threading
import time
from collections import Counter

from celery.signals import task_success

TASK = "q0.task0"  # genapp's first task
STALL = 30.0  # a safety net: no task finished for this long


def test_throughput(cadasta_app, cadasta_sqs, cadasta_result_db, cadasta_worker):
    count = int(os.environ.get("CADASTA_BENCH_SEND", "1000"))
    finished = Counter()
    all_done = threading.Event()

    def on_success(sender=None, **kwargs):
        if sender.name == TASK:
            finished["n"] += 1  # the worker runs one task at a time (solo pool)
            if finished["n"] >= count:
                all_done.set()

    task_success.connect(on_success, weak=False)
    try:
        start = time.perf_counter()
        sent = [cadasta_app.send_task(TASK, args=(i,)).id for i in range(count)]
        seen = -1
        while not all_done.wait(STALL) and finished["n"] != seen:
            seen = finished["n"]
        succeeded = {row["task_id"] for row in cadasta_result_db.rows()
                     if row["status"] == "SUCCESS"}
        elapsed = time.perf_counter() - start
    finally:
        task_success.disconnect(on_success)
    monitored = Counter(message.id for message in cadasta_sqs.messages("platform.fifo"))
    figures = {
        "tasks": count,
        "seconds": elapsed,
        "per_second": count / elapsed,
        "without_row": sum(1 for task_id in sent if task_id not in succeeded),
        "not_once_in_monitor": sum(1 for task_id in sent if monitored[task_id] != 1),
    }
    with open(os.environ["CADASTA_BENCH_OUT"], "w") as out:
        json.dump(figures, out)
    assert figures["without_row"] == 0
    assert figures["not_once_in_monitor"] == 0
