"""Records every module imported by a thread other than the main one (an
audit hook sees each import as it happens) and writes them, by thread, to
$IMPORTS_FILE as the run ends."""

import json
import os
import sys
import threading

found = {}


def _record(event, args):
    if event == "import" and threading.current_thread() is not threading.main_thread() \
            and args[0] not in sys.modules:
        found.setdefault(threading.current_thread().name, []).append(args[0])


sys.addaudithook(_record)


def pytest_unconfigure(config):
    with open(os.environ["IMPORTS_FILE"], "w") as out:
        json.dump(found, out)
