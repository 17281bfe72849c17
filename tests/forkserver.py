"""A warm Python for inner runs: imports the heavy libraries once, then forks
a process per inner run that runs ``python -m pytest`` as a fresh one would.

Started by ``tests/conftest.py`` (one per outer session or xdist worker) as
``python tests/forkserver.py``, it reads one JSON request per line on stdin
(``request``, a number the answers repeat; ``args``, ``cwd``, ``env``;
``stdout``, ``stderr``: the files the run's output goes to), forks, answers
``{"request": N, "pid": ...}``, waits for that process and answers
``{"request": N, "status": ...}`` (as ``Popen.returncode``: negative for a
signal).

The run is a process of its own: its signals, exit code, threads, atexit
handlers and environment are its own, as in a subprocess (but for what Python
reads only as it starts, such as PYTHONWARNINGS or PYTHONHASHSEED: the
client runs a request that sets those otherwise in a fresh interpreter). What it saves is
what every inner run paid before its first line of pytest ran: starting the
interpreter and importing pytest, Celery, kombu, boto3, SQLAlchemy and the
PostgreSQL drivers (about 0.7 s of CPU each). Nothing of pytest-cadasta is
imported here, nor any pytest plugin (pytest rewrites those as it loads them):
what the plugin imports, and when, is still the run's own.
"""

import gc
import json
import os
import runpy
import signal
import sys

#: The libraries imported once, before any run (none of them a pytest plugin).
WARM = ("pytest", "celery", "celery.app.task", "celery.backends.database", "celery.worker",
        "kombu.transport.SQS", "boto3", "botocore.session", "sqlalchemy", "psycopg",
        "psycopg2")


def _run(request, base_path, control):
    """In the forked process: become ``python -m pytest ARGS`` run in ``cwd``
    with ``env`` (as pytester's subprocess would be), then exit as it does."""
    for stream in control:
        stream.close()
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    os.chdir(request["cwd"])
    env = request["env"]
    os.environ.clear()
    os.environ.update(env)
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    # ``python -m`` puts the working directory first; pytester adds it to
    # PYTHONPATH as well.
    sys.path[:] = [request["cwd"], *filter(None, env.get("PYTHONPATH", "").split(os.pathsep)),
                   *base_path]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.argv = [os.path.join(os.path.dirname(sys.modules["pytest"].__file__), "__main__.py"),
                *request["args"]]
    runpy.run_module("pytest", run_name="__main__", alter_sys=True)
    raise SystemExit(0)


def main():
    for name in WARM:
        __import__(name)
    # What is imported here lives as long as each run: no collection of a run
    # need walk it (nor copy its pages, writing the collector's marks).
    gc.freeze()
    here = os.path.dirname(os.path.abspath(__file__))
    base_path = [entry for entry in sys.path if entry not in ("", here)]
    # The requests come on stdin and the answers go to stdout, on descriptors
    # of their own: a run's 0, 1 and 2 become /dev/null and its two files.
    requests = os.fdopen(os.dup(sys.stdin.fileno()), "r")
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, sys.stdin.fileno())
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    control = (requests, answers)
    answers.write(json.dumps({"request": None, "ready": os.getpid()}) + "\n")
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run(request, base_path, control)  # exits, by SystemExit, as pytest does
        answers.write(json.dumps({"request": request["request"], "pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"request": request["request"],
                                  "status": os.waitstatus_to_exitcode(status)}) + "\n")


if __name__ == "__main__":
    main()
