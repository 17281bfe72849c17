"""Outer fixtures: one PostgreSQL for every inner run, and a runner for them."""

from __future__ import annotations

import pytest

from pytest_cadasta.postgres import EphemeralPostgres, find_pg_ctl

collect_ignore = ["examples"]


@pytest.fixture(scope="session")
def shared_pg_url():
    """One ephemeral PostgreSQL for the whole outer session; inner runs create
    and drop their own throwaway databases on it (no initdb per inner run)."""
    server = EphemeralPostgres(find_pg_ctl(None))
    info = server.start()
    try:
        yield f"postgresql://{info.user}@{info.host}:{info.port}/{info.maintenance_db}"
    finally:
        server.stop()


@pytest.fixture
def run_inner(pytester, shared_pg_url):
    """Run pytest as a user would, in a subprocess, on files copied from
    tests/examples; the result database goes on the shared server unless
    ``own_db=True``."""

    def run(*args, examples=(), own_db=False, env=None, timeout=240):
        for example in examples:
            pytester.copy_example(example)
        if not own_db:
            args = (f"--cadasta-result-db={shared_pg_url}", *args)
        with pytest.MonkeyPatch.context() as patch:
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args,
                                                 timeout=timeout)

    return run
