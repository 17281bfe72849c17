"""0.6.0's logging and Sentry: what they set up, and that nothing happens unless a
worker program starts and asked (the real worker is in test_worker.py)."""

import json
import logging
import subprocess
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

import pytest
from celery.utils.log import ColorFormatter

from cadasta_toolbox.config import Config
from cadasta_toolbox.logs import WorkerLogsError, setup_file_logging, setup_sentry

SENTRY_EXTRA = "pip install 'pytest-cadasta[sentry]'"
#: Everything a 0.6.0 worker sets to have logs and Sentry (nothing is sent:
#: port 9 on loopback, and no test here lets sentry-sdk start).
ASKING = {"SETUP_FILE_LOGGING": "True", "SETUP_SENTRY_LOGGING": "True",
          "LOG_DIR": "logs", "SENTRY_DSN": "http://public@127.0.0.1:9/1"}


@pytest.fixture
def root_logger():
    """The root logger; handlers a test adds are removed and closed after."""
    root = logging.getLogger()
    before = list(root.handlers)
    yield root
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)
        handler.close()


def record(level, message):
    return logging.makeLogRecord({"name": "toolbox.test", "levelno": level,
                                  "levelname": logging.getLevelName(level), "msg": message})


def test_file_logging_is_0_6_0s_console_and_rotating_files(tmp_path, root_logger, capsys):
    log_dir = tmp_path / "not" / "yet"
    console, info, error = setup_file_logging(log_dir)
    assert [h for h in root_logger.handlers if h in (console, info, error)] == [
        console, info, error]
    assert (type(console), console.level) == (logging.StreamHandler, logging.INFO)
    assert isinstance(console.formatter, ColorFormatter)
    for handler, name, level in ((info, "app.info.log", logging.INFO),
                                 (error, "app.error.log", logging.ERROR)):
        assert isinstance(handler, RotatingFileHandler)
        assert Path(handler.baseFilename) == log_dir / name
        assert (handler.level, handler.maxBytes, handler.backupCount) == (
            level, 5 * 1024 * 1024, 2)

    root_logger.handle(record(logging.INFO, "an info line"))
    root_logger.handle(record(logging.ERROR, "an error line"))
    for handler in (info, error):
        handler.flush()
    assert "an info line" in (log_dir / "app.info.log").read_text()
    assert "an error line" in (log_dir / "app.info.log").read_text()
    assert (log_dir / "app.error.log").read_text().count("line") == 1
    assert "an error line" in (log_dir / "app.error.log").read_text()
    assert "an info line" in capsys.readouterr().err


def test_file_logging_twice_replaces_its_handlers(tmp_path, root_logger, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = setup_file_logging()
    second = setup_file_logging()
    assert not set(first) & set(root_logger.handlers)
    assert set(second) <= set(root_logger.handlers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.error.log", "app.info.log"]


def test_a_log_dir_that_cannot_be_written_is_a_clear_error(tmp_path, root_logger):
    occupied = tmp_path / "a-file"
    occupied.write_text("")
    before = list(root_logger.handlers)
    with pytest.raises(WorkerLogsError, match=r"LOG_DIR=.*a-file.*writable directory"):
        setup_file_logging(occupied)
    assert root_logger.handlers == before


def test_config_asks_celery_to_keep_the_root_handlers_only_with_file_logging():
    assert Config(SETUP_FILE_LOGGING=True).worker_hijack_root_logger is False
    assert "worker_hijack_root_logger" not in Config()
    assert Config(SETUP_FILE_LOGGING=True,
                  worker_hijack_root_logger=True).worker_hijack_root_logger is True


def test_sentry_is_not_set_up_without_a_dsn():
    assert setup_sentry({"SENTRY_ENVIRONMENT": "production"}) is False
    assert setup_sentry({"SENTRY_DSN": ""}) is False


def test_sentry_without_its_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    with pytest.raises(WorkerLogsError) as excinfo:
        setup_sentry({"SENTRY_DSN": ASKING["SENTRY_DSN"]})
    assert SENTRY_EXTRA in str(excinfo.value)


def test_building_a_config_or_embedding_a_worker_sets_up_nothing(tmp_path,
                                                                subprocess_environment):
    """A producer builds a Config; a test embeds a worker (celeryd_init and
    celeryd_after_setup from something that is not Celery's worker program):
    neither adds a handler, writes a file or imports sentry_sdk."""
    code = """if True:
        import json, logging, os, sys
        from types import SimpleNamespace
        from celery import Celery
        from celery.signals import celeryd_after_setup, celeryd_init
        from cadasta_toolbox.config import Config
        app = Celery("producer", set_as_current=False)
        app.config_from_object(Config())
        embedded = SimpleNamespace(app=app)
        celeryd_init.send(sender="w", instance=embedded, conf=app.conf, options={})
        celeryd_after_setup.send(sender="w", instance=embedded, conf=app.conf)
        print(json.dumps({"sentry_sdk": "sentry_sdk" in sys.modules,
                          "handlers": len(logging.getLogger().handlers),
                          "files": os.listdir(".")}))
    """
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True, env=subprocess_environment(**ASKING)).stdout
    assert json.loads(out) == {"sentry_sdk": False, "handlers": 0, "files": []}


def test_a_worker_program_without_the_sentry_extra_refuses_to_start(tmp_path,
                                                                   subprocess_environment):
    """`celery worker` with SENTRY_DSN and SETUP_SENTRY_LOGGING, sentry_sdk not
    importable: it exits at once (before any connection), naming the extra."""
    code = ("import sys; sys.modules['sentry_sdk'] = None; "
            "from celery.__main__ import main; sys.exit(main())")
    result = subprocess.run(
        [sys.executable, "-c", code, "-A", "toolbox_worker", "worker", "--pool", "solo"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
        env=subprocess_environment(**ASKING, CELERY_BROKER_URL="sqs://key:secret@127.0.0.1:9"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert SENTRY_EXTRA in result.stderr
    assert "ready." not in result.stdout + result.stderr
