"""The platform, wrong in one way: it sends to SQS queues under a prefix the
workers do not use."""

from system_base import make_app

app = make_app("platform", QUEUE_PREFIX="staging")
