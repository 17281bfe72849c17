"""The ephemeral PostgreSQL: it starts (as root too) and survives a taken port."""

import os
import socket
import threading

import psycopg
import pytest

from pytest_cadasta import postgres
from pytest_cadasta.errors import PortTaken


@pytest.fixture
def squatters():
    """Ports taken on loopback: listening (something answers there), or only
    bound (PostgreSQL's own bind fails)."""
    sockets = []

    def take(listen):
        squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sockets.append(squatter)
        squatter.bind(("127.0.0.1", 0))
        if listen:
            squatter.listen()
        return squatter.getsockname()[1]

    yield take
    for squatter in sockets:
        squatter.close()


@pytest.mark.parametrize("listen", [True, False], ids=["listening", "bound"])
def test_a_taken_port_costs_a_retry_not_the_run(monkeypatch, squatters, listen):
    taken = squatters(listen)
    ports = iter([taken, postgres.free_port()])
    monkeypatch.setattr(postgres, "free_port", lambda: next(ports))
    server = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    try:
        info = server.start()
        assert info.port != taken
        with psycopg.connect(host=info.host, port=info.port, user=info.user,
                             dbname="postgres") as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        workdir = server.workdir
    finally:
        server.stop()
    assert not workdir.exists()


def test_ports_taken_at_every_try_are_a_port_taken_error_naming_them(
        monkeypatch, squatters, open_tmpdir):
    monkeypatch.setattr(postgres.tempfile, "tempdir", open_tmpdir)
    taken = [squatters(listen) for listen in (True, False, True)]
    ports = iter(taken)
    monkeypatch.setattr(postgres, "free_port", lambda: next(ports))
    server = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    with pytest.raises(PortTaken) as raised:
        server.start()
    assert str(raised.value).startswith(
        "the ephemeral PostgreSQL could not bind a port: each one chosen free was taken by "
        f"another process before it could bind it ({', '.join(map(str, taken))}); ")
    assert os.listdir(open_tmpdir) == []  # each try's cluster removed


def test_the_second_cluster_is_a_copy_of_the_cached_template(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTEST_CADASTA_CACHE_DIR", str(tmp_path / "cache"))
    first = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    second = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    try:
        first.start()
        info = second.start()
        assert (first.from_template, second.from_template) == (False, True)
        # A cluster of its own, with the template's pg_hba.conf: passwords required.
        assert second.workdir != first.workdir
        with psycopg.connect(host=info.host, port=info.port, user=info.user,
                             dbname="postgres") as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        first.stop()
        second.stop()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [
        postgres.ClusterTemplate(postgres.find_pg_ctl(None), postgres.SUPERUSER,
                                 tmp_path / "cache").path.name]


def test_runs_starting_at_once_share_one_template_and_leave_no_half_built_one(
        monkeypatch, tmp_path):
    monkeypatch.setenv("PYTEST_CADASTA_CACHE_DIR", str(tmp_path / "cache"))
    servers = [postgres.EphemeralPostgres(postgres.find_pg_ctl(None)) for _ in range(2)]
    errors = []

    def start(server):
        try:
            server.start()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(server,)) for server in servers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for server in servers:
            server.stop()
    assert errors == []
    entries = [p.name for p in (tmp_path / "cache").iterdir()]
    assert len(entries) == 1 and entries[0].startswith("cluster-")


def test_a_broken_template_is_dropped_and_the_cluster_starts_from_initdb(
        monkeypatch, tmp_path):
    monkeypatch.setenv("PYTEST_CADASTA_CACHE_DIR", str(tmp_path / "cache"))
    template = postgres.ClusterTemplate(postgres.find_pg_ctl(None), postgres.SUPERUSER)
    template.path.mkdir(parents=True)
    (template.path / "PG_VERSION").write_text("not a cluster\n")
    server = postgres.EphemeralPostgres(postgres.find_pg_ctl(None))
    try:
        info = server.start()
        assert server.from_template is False
        with psycopg.connect(host=info.host, port=info.port, user=info.user,
                             dbname="postgres") as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert (template.path / "PG_VERSION").read_text() != "not a cluster\n"
