"""An unrelated suite of 20 trivial tests, copied as test_idle.py: what
pytest-cadasta costs a run that does not use it."""

import pytest


@pytest.mark.parametrize("n", range(20))
def test_trivial(n):
    assert n + 1 > n
