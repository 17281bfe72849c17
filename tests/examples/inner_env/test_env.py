"""With real-looking credentials outside, everything talks to 127.0.0.1 only."""

import os
from urllib.parse import urlsplit

import boto3


def host_of(url):
    return urlsplit(url).hostname


def test_credentials_are_fake_and_sqs_is_local(cadasta_app, cadasta_sqs):
    assert os.environ["AWS_ACCESS_KEY_ID"] != "AKIAREALLOOKINGKEY01"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] != "real/looking/secret/key/0123456789abcdef"
    assert "AWS_SESSION_TOKEN" not in os.environ
    assert host_of(os.environ["AWS_ENDPOINT_URL_SQS"]) == "127.0.0.1"
    with cadasta_app.connection_for_write() as connection:
        assert connection.hostname == "127.0.0.1"
        channel = connection.default_channel
        assert host_of(channel.sqs().meta.endpoint_url) == "127.0.0.1"
    assert host_of(cadasta_sqs.client().meta.endpoint_url) == "127.0.0.1"
    # A client the user's own code would make without naming an endpoint.
    assert host_of(boto3.client("sqs").meta.endpoint_url) == "127.0.0.1"
    cadasta_app.send_task("export.project", args=(1,))
    assert len(cadasta_sqs.messages("export")) == 1
