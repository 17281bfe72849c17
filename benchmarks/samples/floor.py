"""The floor, copied as test_floor.py and run with ``-p no:cadasta``: what any
pytest run pays that starts pytest-postgresql's process fixture (initdb +
start) and a moto server, each touched once."""

import boto3
import psycopg
import pytest
from moto.server import ThreadedMotoServer
from pytest_postgresql import factories

postgresql_proc = factories.postgresql_proc(host="127.0.0.1", port=None)


@pytest.fixture(scope="session")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_floor(postgresql_proc, moto_endpoint):
    with psycopg.connect(host=postgresql_proc.host, port=postgresql_proc.port,
                         user=postgresql_proc.user, dbname="postgres") as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
    sqs = boto3.client("sqs", region_name="us-west-2", endpoint_url=moto_endpoint,
                       aws_access_key_id="bench", aws_secret_access_key="bench")
    assert sqs.list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200
