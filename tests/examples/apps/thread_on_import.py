"""A conforming app that starts a non-daemon thread while imported (a metrics
flusher, say), which never ends by itself: Python waits for it at exit."""

import threading

from toolbox_app import app  # noqa: F401

stop = threading.Event()
threading.Thread(target=stop.wait, name="metrics-flusher").start()
