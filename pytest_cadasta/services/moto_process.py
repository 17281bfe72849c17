"""moto's server in a process of its own, serving a socket the run bound and
dying with the run: ``python -m pytest_cadasta.services.moto_process SOCKET_FD LIFELINE_FD``.

Out of pytest's process, moto answers on the second core instead of taking
turns with the worker and the checks for one interpreter lock. The run binds
the socket (port 0: nothing can take the port meanwhile) and hands it over, so
the endpoint is known, and the AWS environment pinned, before this process has
even imported moto: requests wait in the socket's queue until it serves.

It ends when the run does, however the run ends: the run holds the write end
of the lifeline pipe, which the kernel closes when the run dies, even by
SIGKILL; reading end-of-file, this process exits at once. (Linux's
parent-death signal would do it too, but fires when the thread that started
this process ends, not the run; the pipe is portable and exact.)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections import Counter
from typing import Any

#: The path of the request that answers once no other request is in flight.
SETTLE_PATH = "/__cadasta__/settle"
#: The path that answers how many requests of each AWS action came so far
#: (JSON: {"ReceiveMessage": 12, ...}); benchmarks/bench.py reads it.
CALLS_PATH = "/__cadasta__/calls"


def action(environ: Any) -> str:
    """The AWS action a request asks for: the JSON protocol's target header
    ('AmazonSQS.ReceiveMessage', what botocore speaks to SQS), else the query
    protocol's ``Action`` in the URL (a query-protocol POST, whose action is in
    its body, which is not read here, counts under its path)."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    for pair in (environ.get("QUERY_STRING") or "").split("&"):
        name, _, value = pair.partition("=")
        if name == "Action" and value:
            return value
    return environ.get("PATH_INFO") or "/"


class Counted:
    """A WSGI app counting the requests it is handling, and each action's
    requests so far (``CALLS_PATH``); ``SETTLE_PATH`` waits (up to the seconds
    in its query) until it is the only one."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.handling = 0
        self.calls: Counter[str] = Counter()
        self.changed = threading.Condition()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        if environ.get("PATH_INFO") == SETTLE_PATH:
            return self._settle(environ, start_response)
        if environ.get("PATH_INFO") == CALLS_PATH:
            with self.changed:
                body = json.dumps(dict(self.calls)).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        with self.changed:
            self.handling += 1
            self.calls[action(environ)] += 1
        try:
            return self.app(environ, start_response)
        finally:
            with self.changed:
                self.handling -= 1
                self.changed.notify_all()

    def _settle(self, environ: Any, start_response: Any) -> list[bytes]:
        try:
            timeout = float(environ.get("QUERY_STRING") or 3)
        except ValueError:
            timeout = 3.0
        with self.changed:
            settled = self.changed.wait_for(lambda: self.handling == 0, timeout)
        start_response("200 OK" if settled else "503 Busy",
                       [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok" if settled else b"no"]


def remembering_hosts(dispatcher: type) -> type:
    """moto's dispatcher ``dispatcher`` answering which backend serves a host
    once per host: moto asks it on every request, and each asking lists moto's
    package directory and stats each of its ~180 entries (half a millisecond of
    CPU, under the dispatcher's lock, which every request takes in turn). The
    answer depends only on the host and on the installed moto, so it is kept."""

    class Remembering(dispatcher):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.backend_of: dict[Any, Any] = {}

        def get_backend_for_host(self, host: Any) -> Any:
            try:
                return self.backend_of[host]
            except KeyError:
                backend = self.backend_of[host] = super().get_backend_for_host(host)
                return backend

    return Remembering


def _exit_when_the_run_ends(lifeline: int) -> None:
    def watch() -> None:
        try:
            while os.read(lifeline, 64):
                pass
        except OSError:
            pass
        os._exit(0)

    threading.Thread(target=watch, name="cadasta-moto-lifeline", daemon=True).start()


def main(argv: list[str]) -> None:
    socket_fd, lifeline = (int(arg) for arg in argv[1:3])
    _exit_when_the_run_ends(lifeline)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    from moto.moto_server import werkzeug_app
    from werkzeug.serving import make_server

    dispatcher = werkzeug_app.DomainDispatcherApplication
    if callable(getattr(dispatcher, "get_backend_for_host", None)):
        dispatcher = remembering_hosts(dispatcher)
    app = Counted(dispatcher(werkzeug_app.create_backend_app))
    handler = getattr(werkzeug_app, "MotoRequestHandler", None)  # moto >= 5.1
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=handler,
                         fd=socket_fd)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
