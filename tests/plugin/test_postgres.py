"""The ephemeral PostgreSQL: it starts (as root too) and survives a taken port."""

import socket

import psycopg

from pytest_cadasta import postgres


def test_a_taken_port_costs_a_retry_not_the_run(monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
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
