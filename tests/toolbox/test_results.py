"""A stored result is data, never code: what 'cadasta-pickle' writes the
platform can read, and what it reads back (chords, AsyncResult.get, the
database backend) loads the data types of ``DATA_TYPES`` and nothing else. A
row that names anything else is refused by name, and nothing of it runs: each
poisoned row below would create a marker file if any of it ran."""

import builtins
import copyreg
import datetime
import decimal
import importlib
import os
import pickle
import subprocess
import uuid
from types import SimpleNamespace

import pytest
from celery import Celery
from hypothesis import given, settings
from hypothesis import strategies as st
from kombu.exceptions import DecodeError
from kombu.serialization import loads

from cadasta_toolbox.backend import ResultBackend
from cadasta_toolbox.config import Config
from cadasta_toolbox.results import (
    RESULT_CONTENT_TYPE,
    ResultRefused,
    _dumps,
    load_data,
)


class Calls:
    """A pickle that calls ``func(*args)`` as it loads."""

    def __init__(self, func, *args):
        self.reduced = (func, args)

    def __reduce__(self):
        return self.reduced


def _raw_global_call(module, name, argument):
    """A protocol-0 pickle calling ``module.name(argument)``, by hand (for
    names no object of this process pickles as)."""
    return f"c{module}\n{name}\n(V{argument}\ntR.".encode()


def poisoned(marker):
    """(label, row) for each way a row can ask to run something."""
    command = f"touch {marker}"
    inner = pickle.dumps(Calls(os.system, command))
    return [
        ("os.system", pickle.dumps(Calls(os.system, command))),
        ("posix.system", _raw_global_call("posix", "system", command)),
        ("builtins.eval", pickle.dumps(Calls(eval, f"__import__('os').system({command!r})"))),
        ("builtins.exec", pickle.dumps(Calls(exec, f"import os; os.system({command!r})"))),
        ("builtins.getattr chain", pickle.dumps(Calls(
            getattr, Calls(builtins.__import__, "os"), "system"))),
        ("subprocess.Popen", pickle.dumps(Calls(subprocess.Popen, ["touch", str(marker)]))),
        ("importlib.import_module", pickle.dumps(Calls(importlib.import_module, "os"))),
        ("pickle.loads nested", pickle.dumps(Calls(pickle.loads, inner))),
        ("copyreg._reconstructor", pickle.dumps(Calls(copyreg._reconstructor, subprocess.Popen,
                                                      object, None))),
        ("copyreg.__newobj__", _raw_global_call("copyreg", "__newobj__", command)),
        ("a Python 2 name", _raw_global_call("__builtin__", "eval", "1")),
    ]


def _backend():
    app = Celery("results", set_as_current=False)
    app.config_from_object(Config())
    from celery.backends.base import BaseBackend

    return BaseBackend(app)


READERS = {
    "load_data": load_data,
    "kombu's loads": lambda row: loads(row, RESULT_CONTENT_TYPE, "binary",
                                       accept=[RESULT_CONTENT_TYPE]),
    # Celery 5.7's database backend reads a row its serializer refuses with a
    # bare pickle.loads when it starts like a pickle; the toolbox's does not.
    "the database backend": lambda row: ResultBackend._decode_stored_result(
        SimpleNamespace(decode=_backend().decode), row),
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_poisoned_row_is_refused_by_name_and_nothing_of_it_runs(tmp_path, reader):
    marker = tmp_path / "ran"
    for label, row in poisoned(marker):
        with pytest.raises((ResultRefused, DecodeError)) as refused:
            READERS[reader](row)
        assert "refused to load a result naming" in str(refused.value), label
        assert not marker.exists(), f"{label} ran"


def test_the_refusal_names_what_the_row_would_have_run(tmp_path):
    with pytest.raises(ResultRefused, match=r"naming posix\.system: results hold data only"):
        load_data(pickle.dumps(Calls(os.system, f"touch {tmp_path / 'ran'}")))


#: Every value a worker may store: data, as deep as it likes.
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.complex_numbers(allow_nan=False) | st.text() | st.binary()
           | st.builds(bytearray, st.binary())
           | st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)
                          | st.builds(datetime.timezone, st.timedeltas(
                              min_value=datetime.timedelta(hours=-23),
                              max_value=datetime.timedelta(hours=23))))
           | st.dates() | st.times() | st.timedeltas()
           | st.decimals(allow_nan=False) | st.uuids())
HASHABLE = (st.none() | st.booleans() | st.integers() | st.text() | st.binary() | st.uuids()
            | st.dates())
VALUES = st.recursive(SCALARS, lambda inner: (
    st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    | st.sets(HASHABLE, max_size=4) | st.frozensets(HASHABLE, max_size=4)), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_every_value_a_worker_may_store_reads_back_as_it_was(value):
    assert load_data(_dumps(value)) == value


@settings(max_examples=100, deadline=None)
@given(VALUES)
def test_what_the_backend_stores_it_reads_back(value):
    backend = _backend()
    assert backend.decode(backend.encode(value)) == value


@pytest.mark.parametrize("value", [
    uuid.uuid1(), decimal.Decimal("-0.5"), datetime.timezone(datetime.timedelta(hours=5)),
    {frozenset({1}): {2, 3}}])
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_rows_of_other_pickle_protocols_holding_data_read_back(value, protocol):
    assert load_data(pickle.dumps(value, protocol=protocol)) == value


def test_writing_anything_but_data_names_its_type():
    from collections import OrderedDict

    with pytest.raises(pickle.PicklingError, match=r"collections\.OrderedDict is not a data "
                                                   r"type a result may hold"):
        _dumps({"ordered": OrderedDict(a=1)})
