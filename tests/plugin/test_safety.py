"""Nothing reaches AWS: not while the app is imported, not during the run, even
with real-looking credentials, a profile and an HTTPS proxy in the environment."""

import json
import socketserver
import threading

import pytest

from pytest_cadasta.checks import iter_checks

#: The platform-shaped sample apps' work queues.
QUEUES = ("celery", "export", "msg")

REAL_LOOKING = {
    "AWS_ACCESS_KEY_ID": "AKIAREALLOOKINGKEY01",
    "AWS_SECRET_ACCESS_KEY": "real/looking/secret/key/0123456789abcdef",
    "AWS_SESSION_TOKEN": "real-looking-session-token",
    "AWS_PROFILE": "cadasta-production",
    "AWS_DEFAULT_REGION": "us-west-2",
}


class _RecordingHandler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline(1024).decode("latin-1").strip()
        if line:
            self.server.requests.append(line)
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def recording_proxy():
    """An HTTP(S) proxy on loopback that records each request line and refuses it."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RecordingHandler)
    server.daemon_threads = True
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def production_shell(recording_proxy, pytester, monkeypatch):
    """The environment of a developer's shell with production AWS access."""
    host, port = recording_proxy.server_address
    proxy = f"http://{host}:{port}"
    aws = pytester.mkdir("aws")
    (aws / "credentials").write_text(
        "[cadasta-production]\naws_access_key_id = AKIAREALLOOKINGKEY02\n"
        "aws_secret_access_key = another/real/looking/secret\n")
    (aws / "config").write_text("[profile cadasta-production]\nregion = us-west-2\n")
    env = {**REAL_LOOKING, "AWS_SHARED_CREDENTIALS_FILE": str(aws / "credentials"),
           "AWS_CONFIG_FILE": str(aws / "config")}
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY"):
        env[name] = proxy
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return env


@pytest.mark.parametrize("imported_by", ["the plugin", "a conftest"])
def test_an_app_that_sets_itself_up_while_imported_talks_only_to_loopback(
        run_inner, pytester, recording_proxy, production_shell, imported_by):
    pytester.copy_example("inner_net/conftest.py")
    if imported_by == "a conftest":  # conftests load before the plugin's configure
        conftest = pytester.path / "conftest.py"
        conftest.write_text(conftest.read_text() + "\nimport platform_producer  # noqa\n")
    result = run_inner("--cadasta-app=platform_producer:app", "--cadasta-producer-only",
                       examples=["apps/cadasta_platform.py", "apps/platform_producer.py"],
                       env=production_shell)
    left = json.loads((pytester.path / "left_loopback.json").read_text())
    assert recording_proxy.requests == []
    assert left == []
    result.stdout.fnmatch_lines(["verdict: conforms*"])
    assert result.ret == 0


def test_an_exception_from_the_apps_own_code_is_a_check_failure_saying_where(
        run_inner, pytester):
    result = run_inner("--cadasta-app=platform_breaker_open:app", "--cadasta-producer-only",
                       "-k", "task_lands_once",
                       examples=["apps/cadasta_platform.py", "apps/platform_breaker_open.py"])
    result.assert_outcomes(failed=3, deselected=len(list(iter_checks(QUEUES))) - 3)
    result.stdout.fnmatch_lines([
        "*saw:   BreakerOpen: open since ConnectionError('the broker refused the "
        "connection') (raised at cadasta_platform.py:* in guarded)",
        "*fix:   look at cadasta_platform.py:* in guarded; *"], consecutive=False)
    assert "Traceback" not in result.stdout.str()
    assert "site-packages" not in result.stdout.str()


SECRETS = ("pw-result-5e1", "pw-broker-7a2", "pw-admin-3c9")


def test_no_password_appears_in_any_output(run_inner, pytester, shared_pg_url):
    """Header, failures, -vv, captured logs, --collect-only, JUnit XML, the JSON
    and Markdown reports and the job summary: none of them shows a password,
    whichever setting held it."""
    admin = shared_pg_url.replace("postgresql://postgres@",
                                  "postgresql://postgres:pw-admin-3c9@")
    pytester.copy_example("apps/secretive.py")
    runs = [
        run_inner("--cadasta-app=secretive", f"--cadasta-result-db={admin}", "-vv", "-rA",
                  "--junitxml=junit.xml", "--cadasta-report=report.json",
                  "--cadasta-report=report.md", "-o", "log_level=DEBUG", own_db=True,
                  env={"GITHUB_STEP_SUMMARY": str(pytester.path / "summary.md")}),
        run_inner("--cadasta-app=secretive", f"--cadasta-result-db={admin}",
                  "--collect-only", own_db=True),
    ]
    assert runs[0].ret == pytest.ExitCode.TESTS_FAILED  # report.generate has no queue
    outputs = [run.stdout.str() + run.stderr.str() for run in runs]
    outputs += [(pytester.path / name).read_text()
                for name in ("junit.xml", "report.json", "report.md", "summary.md")]
    assert "postgresql://cadasta:**@localhost:5432/cadasta" in outputs[-3]  # told, masked
    assert "localhost:5432/cadasta" in outputs[-1]  # the job summary's picture
    for secret in SECRETS:
        assert not any(secret in output for output in outputs), secret
