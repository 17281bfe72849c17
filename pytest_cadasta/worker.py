"""An in-process Celery worker consuming the app's work queues.

It is Celery's own ``WorkController`` (via ``celery.contrib.testing``), run in a
thread with the signals a real ``celery worker`` sends around start-up, so
handlers such as the toolbox's ``setup_app`` run as they would in production.
"""

from __future__ import annotations

import threading
from typing import Any

from pytest_cadasta.errors import WorkerFailed

#: Deprecation warnings raised inside kombu's HTTP client (pycurl) while the
#: worker polls SQS: not the user's to fix, so the plugin silences them.
KOMBU_CURL_WARNINGS = ("IOCTLFUNCTION is deprecated", "socket_all is deprecated")

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def _controller_class() -> Any:
    from celery import signals
    from celery.contrib.testing.worker import TestWorkController

    class CadastaWorkController(TestWorkController):
        def on_before_init(self, **kwargs: Any) -> None:
            super().on_before_init(**kwargs)
            signals.celeryd_init.send(sender=self.hostname, instance=self,
                                      conf=self.app.conf, options=kwargs)

        def on_consumer_ready(self, consumer: Any) -> None:
            signals.worker_ready.send(sender=consumer)
            super().on_consumer_ready(consumer)

    return CadastaWorkController


class InProcessWorker:
    """Start with ``start()``, stop with ``stop()``; ``queues`` are consumed."""

    def __init__(self, app: Any, queues: list[str], hostname: str = "cadasta-test@localhost"):
        self.app = app
        self.queues = list(queues)
        self.hostname = hostname
        self.controller: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> InProcessWorker:
        from celery import signals
        from celery.contrib.testing.worker import test_worker_started

        def on_started(sender: Any = None, worker: Any = None, **kwargs: Any) -> None:
            if worker is self.controller:
                self._ready.set()

        test_worker_started.connect(on_started, weak=False)
        try:
            # Not celery's setup_app_for_worker: it would take over the root
            # logger (pytest's capture lives there) and the process default app.
            self.app.finalize()
            self.controller = _controller_class()(
                app=self.app, concurrency=1, pool="solo", loglevel="WARNING",
                logfile=None, hostname=self.hostname, queues=self.queues,
                ready_callback=None, without_heartbeat=True, without_mingle=True,
                without_gossip=True)
            signals.celeryd_after_setup.send(sender=self.hostname, instance=self.controller,
                                             conf=self.app.conf)
            self._thread = threading.Thread(target=self._run, name="cadasta-worker",
                                            daemon=True)
            self._thread.start()
            if not self._ready.wait(START_TIMEOUT):
                self.stop()
                raise WorkerFailed(
                    f"the in-process worker did not start within {START_TIMEOUT:.0f} s"
                    + (f": {self._error}" if self._error else ""))
            if self._error is not None:
                raise WorkerFailed(f"the in-process worker failed: {self._error}")
            # The solo pool marks the process as "inside a task", which forbids
            # AsyncResult.get() in the tests; celery.contrib.testing clears it too.
            from celery._state import _set_task_join_will_block

            _set_task_join_will_block(False)
        finally:
            test_worker_started.disconnect(on_started)
        return self

    def _run(self) -> None:
        try:
            self.app.set_current()  # this thread only
            self.controller.start()
        except BaseException as exc:  # reported by start()/stop()
            self._error = exc
            self._ready.set()

    def stop(self) -> None:
        from celery.worker import state

        thread, self._thread = self._thread, None
        if thread is None:
            return
        state.should_terminate = 0
        try:
            thread.join(STOP_TIMEOUT)
            if thread.is_alive():
                raise WorkerFailed(
                    f"the in-process worker did not stop within {STOP_TIMEOUT:.0f} s "
                    "(a task still running?)")
        finally:
            state.should_terminate = None
