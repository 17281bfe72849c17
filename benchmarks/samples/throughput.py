"""Throughput through pytest-cadasta's fixtures, copied as test_throughput.py
next to genapp.py: send CADASTA_BENCH_SEND tasks, wait until the worker has
run them all, confirm every SUCCESS row (the time from the first send to that
confirmation is the figure), then confirm every task's one copy in the monitor
queue. The figures go to CADASTA_BENCH_OUT as JSON, written before asserting.

The sender keeps at most WINDOW tasks not yet run, as the bare loop it is
compared with keeps its queue short: moto's ReceiveMessage scans the whole
queue for every message it returns, so a backlog of n costs n squared and
would measure moto, not the plugin."""

import json
import os
import threading
import time
from collections import Counter

from celery.signals import task_success

TASK = "q0.task0"  # genapp's first task
STALL = 30.0  # a safety net: no task finished for this long
WINDOW = 20


def test_throughput(cadasta_app, cadasta_sqs, cadasta_result_db, cadasta_worker):
    count = int(os.environ.get("CADASTA_BENCH_SEND", "1000"))
    finished = Counter()
    changed = threading.Condition()

    def on_success(sender=None, **kwargs):
        if sender.name == TASK:
            with changed:
                finished["n"] += 1
                changed.notify_all()

    def wait_until(done):
        """Wait until ``done()``; False if no task finished for STALL seconds."""
        with changed:
            while not done():
                seen = finished["n"]
                changed.wait(STALL)
                if finished["n"] == seen and not done():
                    return False
        return True

    task_success.connect(on_success, weak=False)
    try:
        start = time.perf_counter()
        sent = []
        for i in range(count):
            if not wait_until(lambda: len(sent) - finished["n"] < WINDOW):
                break
            sent.append(cadasta_app.send_task(TASK, args=(i,)).id)
        wait_until(lambda: finished["n"] >= len(sent))
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
