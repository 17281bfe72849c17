"""Nothing is imported by two threads at once: what the run's threads (the
in-process workers, the result database's, PostgreSQL's start) need is
imported by the main thread before they start. Two threads importing one
package at once can each find it half made (``ImportError: cannot import
name ... from partially initialized module``), rarely and only on a busy
machine: so the test watches every import as it happens, and none may come
from another thread."""

import json

import pytest

SYSTEM = ("--cadasta-app=export_worker", "--cadasta-app=msg_worker",
          "--cadasta-producer=platform_app", "--cadasta-queues=export_worker=export,celery",
          "--cadasta-queues=msg_worker=msg,celery")


@pytest.mark.fresh_python
@pytest.mark.parametrize(("args", "examples"), [
    (("--cadasta-app=toolbox_app:app",), ["apps/toolbox_app.py"]),
    (SYSTEM, ["system"]),
], ids=["one app", "system"])
def test_the_runs_threads_import_nothing(run_inner, pytester, args, examples):
    pytester.copy_example("inner_imports/conftest.py")
    imports = pytester.path / "imports.json"
    result = run_inner(*args, examples=examples, own_db=True,
                       env={"IMPORTS_FILE": str(imports)})
    assert result.ret == pytest.ExitCode.OK
    assert json.loads(imports.read_text()) == {}
