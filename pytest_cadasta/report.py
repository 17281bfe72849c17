"""What the plugin tells the user about the run: header lines."""

from __future__ import annotations

from typing import Any

from pytest_cadasta.settings import Settings
from pytest_cadasta.topology import Topology


def header_lines(settings: Settings, app: Any, topology: Topology) -> list[str]:
    from cadasta_toolbox.masking import mask_url

    role = "producer only (worker checks skipped)" if settings.producer_only else "worker"
    if settings.result_db is not None:
        database = mask_url(settings.result_db) + " (a throwaway database on it)"
    else:
        database = "ephemeral PostgreSQL (pytest-postgresql), started on first use"
    lines = [
        f"cadasta: app {settings.app_spec} ({app.main or 'unnamed'}), role: {role}",
        f"cadasta: work queues {', '.join(topology.work_queues)}; "
        f"platform queue {topology.platform_queue}",
        "cadasta: the worker consumes "
        + (f"{', '.join(topology.production_queues)} (-Q, {settings.label('queues')})"
           if topology.production_queues is not None else
           "what 'celery worker' without -Q consumes (every queue in task_queues, less "
           "what the app deselects at start-up)"),
        "cadasta: SQS: moto server on 127.0.0.1 (random port, fake credentials), "
        "listening since before the app was imported",
        f"cadasta: result database: {database}",
    ]
    broker = app.conf.broker_url or ""
    transport = app.conf.broker_transport or broker.partition("://")[0] or "amqp"
    if transport != "sqs":
        lines.insert(3, f"cadasta: the app's broker ({mask_url(broker) or transport}) is not "
                        "SQS: replaced by the moto server for the run; the checks judge what "
                        "the app does on SQS, as the platform runs it")
    return lines
