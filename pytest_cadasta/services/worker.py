"""An in-process Celery worker consuming the queues asked of it.

It is Celery's own ``WorkController`` (via ``celery.contrib.testing``), run in a
thread with the signals a real ``celery worker`` sends around start-up, so
handlers such as the toolbox's ``setup_app`` run as they would in production.
The plugin drives it through its event loop: a wake-up pipe registered there
runs calls in the worker's own thread (start consuming a queue) and
ends the loop at once on ``stop()``, without waiting out an SQS long poll.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

from pytest_cadasta.basics.errors import WorkerFailed

#: Deprecation warnings raised inside kombu's HTTP client (pycurl) while the
#: worker polls SQS: not the user's to fix, so the plugin silences them.
KOMBU_CURL_WARNINGS = ("IOCTLFUNCTION is deprecated", "socket_all is deprecated")

#: Safety nets against a hang only (a loaded machine may take seconds where an
#: idle one takes milliseconds): each ends as soon as the worker reports.
START_TIMEOUT = 60.0
CALL_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
#: The longest the worker's event loop sleeps before it runs what is due.
LOOP_TICK = 0.02


def _nothing() -> None:
    """A timer's body: its only job is to end the loop's poll."""


def _controller_class() -> Any:
    from celery import signals
    from celery.contrib.testing.worker import TestWorkController

    class CadastaWorkController(TestWorkController):
        on_loop_ready: Callable[[Any], None] | None = None

        def on_before_init(self, **kwargs: Any) -> None:
            super().on_before_init(**kwargs)
            signals.celeryd_init.send(sender=self.hostname, instance=self,
                                      conf=self.app.conf, options=kwargs)

        def on_consumer_ready(self, consumer: Any) -> None:
            if self.on_loop_ready is not None:
                self.on_loop_ready(self)
            signals.worker_ready.send(sender=consumer)
            super().on_consumer_ready(consumer)

    return CadastaWorkController


class InProcessWorker:
    """Start with ``start()``, stop with ``stop()``; ``consume()`` adds queues,
    in the worker's own thread."""

    def __init__(self, app: Any, queues: Iterable[str],
                 hostname: str = "cadasta-test@localhost") -> None:
        self.app = app
        self.queues = list(dict.fromkeys(queues))
        self.hostname = hostname
        self.controller: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping = False
        #: Why the worker was given up (stuck in a task), once it was.
        self._given_up: str | None = None
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Any]] = queue.SimpleQueue()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)

    # -- start and stop ------------------------------------------------------
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
            # Celery's worker takes the process's current kombu event loop if
            # there is one: a second worker in this process would run its loop
            # on the first one's, from another thread. Each gets its own.
            from kombu.asynchronous import set_event_loop

            set_event_loop(None)
            controller_class = _controller_class()
            self.controller = controller_class(
                app=self.app, concurrency=1, pool="solo", loglevel="WARNING",
                logfile=None, hostname=self.hostname, queues=self.queues,
                ready_callback=None, without_heartbeat=True, without_mingle=True,
                without_gossip=True)
            self.controller.on_loop_ready = self._listen_for_wakeups
            from pytest_cadasta.basics.imports import WORKER, before_threads

            before_threads(WORKER)  # what its loop imports as it first polls
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
            self.call(self._bind_http_client)
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
        """Stop this worker (and no other: Celery's own test worker is stopped
        through ``celery.worker.state.should_terminate``, which every worker of
        the process obeys). Its loop is woken, and raises in its own thread what
        Celery raises there on a terminate signal."""
        thread, self._thread = self._thread, None
        if self._given_up is not None:
            return  # left behind, stuck in its task
        try:
            if thread is not None:
                self._stopping = True
                self._wake()  # the loop stops now, not after a long poll
                thread.join(STOP_TIMEOUT)
                if thread.is_alive():
                    task = self.running_task()
                    self.give_up(f"it did not stop within {STOP_TIMEOUT:.0f} s: " + (
                        "a task still running" if task is None else
                        f"task {task.name!r} ({task.id}) never returned"))
                    raise WorkerFailed(f"the in-process worker was given up: {self._given_up}")
        finally:
            if thread is None or not thread.is_alive():
                for fd in (self._wake_read, self._wake_write):
                    if fd >= 0:
                        os.close(fd)
                self._wake_read = self._wake_write = -1

    @property
    def running(self) -> bool:
        """Started, and its loop still going."""
        return self._thread is not None and self._thread.is_alive()

    def _bind_http_client(self) -> None:
        """Make the SQS channel's HTTP client now, on this worker's event loop.

        kombu binds it, when first needed, to the process's current loop: the
        loop of the worker made last. With several workers in one process, a
        worker that first polled after another was made would poll on that
        other's loop, from its own thread."""
        consumer = getattr(self.controller, "consumer", None)
        channel = getattr(getattr(consumer, "task_consumer", None), "channel", None)
        make_client = getattr(channel, "asynsqs", None)
        if make_client is not None:
            make_client()

    def running_task(self) -> Any:
        """The request this worker is running now (Celery's request: ``name``,
        ``id``), or None. The solo pool runs one at a time, in the worker's
        thread, which does nothing else meanwhile. (Celery keeps the requests
        of every worker of the process in one set: this one's carry its name.)"""
        from celery.worker import state

        return next((request for request in list(state.active_requests)
                     if getattr(request, "hostname", self.hostname) == self.hostname), None)

    def give_up(self, reason: str) -> None:
        """Give up on a worker stuck in a task that never returns. Nothing can
        end that task from outside its thread, so the thread (a daemon, which
        keeps no process alive) is told to stop should the task ever return,
        and left behind; every later use raises ``WorkerFailed`` with
        ``reason``."""
        self._given_up = reason
        self._stopping = True
        self._wake()
        # Its broker connection is closed now, while SQS answers: kombu would
        # put its unacknowledged messages back at exit, fail (moto gone by
        # then) and dump them into a temporary file.
        connection = getattr(self.controller.consumer, "connection", None)
        if connection is not None:
            connection.close()

    def _require_running(self) -> None:
        if self._given_up is not None:
            raise WorkerFailed(f"the in-process worker was given up: {self._given_up}")
        if not self.running or self.controller is None:
            reason = f": {self._error}" if self._error is not None else ""
            raise WorkerFailed(f"the in-process worker is not running{reason}")

    # -- calls in the worker's thread -------------------------------------------
    def _terminate_if_stopping(self) -> None:
        """Once ``stop()`` asked: raise what celery.worker.state.maybe_shutdown
        raises in the loop of a worker told to terminate, so WorkController.start
        stops this worker (and no other)."""
        if self._stopping:
            from celery.exceptions import WorkerTerminate

            raise WorkerTerminate(0)

    def _listen_for_wakeups(self, controller: Any) -> None:
        self._terminate_if_stopping()  # stopped while it was starting
        hub = getattr(controller, "hub", None)
        if hub is not None:
            hub.add_reader(self._wake_read, self._on_wakeup)
            # kombu's loop runs a callback scheduled while it fires its timers
            # only after its next poll returns, up to a second later: the SQS
            # transport schedules its next receive that way. A short timer
            # bounds that poll, so the worker polls again within LOOP_TICK.
            hub.call_repeatedly(LOOP_TICK, _nothing)

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"!")
        except OSError:
            pass

    def _on_wakeup(self, *args: Any) -> None:
        try:
            while os.read(self._wake_read, 512):
                pass
        except (BlockingIOError, OSError):
            pass
        self._terminate_if_stopping()
        while True:
            try:
                func, reply = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                reply.put((True, func()))
            except BaseException as exc:  # handed to the caller
                reply.put((False, exc))

    def call(self, func: Callable[[], Any]) -> Any:
        """Run ``func()`` in the worker's thread, between two turns of its loop;
        return what it returned (or raise what it raised)."""
        self._require_running()
        reply: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._calls.put((func, reply))
        self._wake()
        try:
            ok, value = reply.get(timeout=CALL_TIMEOUT)
        except queue.Empty:
            raise WorkerFailed(
                f"the in-process worker did not answer within {CALL_TIMEOUT:.0f} s "
                "(a task still running?)") from None
        if not ok:
            raise value
        return value

    def call_if_running(self, func: Callable[[], Any]) -> None:
        """``call(func)``, or nothing if the worker is gone or inside a task (it
        would answer only once the task returns); for teardown."""
        if self.running and self.running_task() is None:
            try:
                self.call(func)
            except Exception:  # the worker's own teardown reports what went wrong
                pass

    def learn_tasks(self) -> None:
        """Make the tasks registered on the app since the worker started known to
        it (its consumer reads the registry once, as it starts)."""
        self.call(lambda: self.controller.consumer.update_strategies())

    # -- what it consumes ----------------------------------------------------------
    def consume(self, queues: Iterable[str]) -> None:
        """Also consume ``queues`` (those not consumed yet)."""
        self._require_running()
        missing = [q for q in queues if q not in self.queues]
        if not missing:
            return

        def add() -> None:
            for name in missing:
                self.controller.consumer.add_task_queue(name)

        self.call(add)
        self.queues += missing
