"""What the plugin tells the user about the run: header lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_cadasta.settings import Settings

if TYPE_CHECKING:
    from pytest_cadasta.audit.target import AppTarget
    from pytest_cadasta.running.run import LoadedApp


def _consumes(settings: Settings, loaded: LoadedApp) -> str:
    """What the worker consumes as production starts it: the one account the
    monitor check judges."""
    topology = loaded.topology
    consumed = ", ".join(topology.in_production) or "nothing"
    if topology.production_queues is None:
        how = ("'celery worker' without -Q: every queue in task_queues, less what the app "
               "deselects at start-up")
    else:
        how = f"-Q {','.join(topology.production_queues)}, {settings.label('queues')}"
    dropped = topology.dropped_at_start
    if dropped:
        how += (f"; the app leaves out {', '.join(dropped)} as its worker starts (its "
                "celeryd_after_setup handlers: the toolbox's drops the monitor)")
    return f"{consumed} ({how})"


def _broker_replaced(loaded: LoadedApp, whose: str) -> str | None:
    from cadasta_toolbox.masking import mask_url

    conf = loaded.app.conf
    broker = conf.broker_url or ""
    transport = conf.broker_transport or broker.partition("://")[0] or "amqp"
    if transport == "sqs":
        return None
    return (f"cadasta: {whose} broker ({mask_url(broker) or transport}) is not "
            "SQS: replaced by the moto server for the run; the checks judge what the app "
            "does on SQS, as the platform runs it")


def _least_privilege(loaded: LoadedApp, whose: str) -> list[str]:
    """What the run does with an app's least-privilege SQS settings."""
    from pytest_cadasta.apps.wiring import STS_OPTIONS

    options = loaded.app.conf.broker_transport_options or {}
    lines = []
    if loaded.topology.predefined:
        lines.append(f"cadasta: {whose} predefined_queues: made on the moto server under "
                     "the names their URLs give, and reached at those URLs (nothing listed "
                     "or created by the app)")
    if any(options.get(key) for key in STS_OPTIONS):
        lines.append(f"cadasta: {whose} sts_role_arn ({options.get('sts_role_arn')}): not "
                     "assumed in the run (moto's SQS takes any credentials; no STS call "
                     "leaves the machine); --cadasta-audit assumes it as kombu would")
    return lines


def header_lines(settings: Settings, apps: list[LoadedApp],
                 targets: dict[str, AppTarget] | None = None) -> list[str]:
    """What the run will judge, and on what; in an audit (``targets``), what
    it will contact."""
    from cadasta_toolbox.masking import mask_url

    if targets is not None:
        from pytest_cadasta.audit.target import header_lines as audit_lines

        return audit_lines(list(targets.values()),
                           {loaded.label for loaded in apps if loaded.entry.is_worker})

    if settings.result_db is not None:
        database = mask_url(settings.result_db) + " (a throwaway database on it)"
    else:
        database = "ephemeral PostgreSQL (a cluster of the run's own), started on first use"
    moto = ("moto server on 127.0.0.1 (random port, fake credentials)"
            if settings.moto_endpoint is None else
            f"moto server on 127.0.0.1:{settings.moto_endpoint.rsplit(':', 1)[1].strip('/')} "
            "(--cadasta-moto-endpoint, reset; fake credentials)")
    infrastructure = [
        f"cadasta: SQS: {moto}, listening since before the app was imported",
        f"cadasta: result database: {database}",
    ]
    if settings.result_db is None:
        from pytest_cadasta.services.postgres import files_elsewhere

        elsewhere = files_elsewhere()
        if elsewhere is not None:
            infrastructure.append(f"cadasta: {elsewhere}")
    if len(apps) == 1:
        loaded = apps[0]
        topology = loaded.topology
        role = ("producer only (worker checks skipped)" if not loaded.entry.is_worker
                else "worker")
        lines = [
            f"cadasta: app {loaded.entry.spec} ({loaded.app.main or 'unnamed'}), role: {role}",
            f"cadasta: work queues {', '.join(topology.work_queues)}; "
            f"platform queue {topology.platform_queue}",
            f"cadasta: the worker consumes {_consumes(settings, loaded)}",
        ]
    else:
        lines = [f"cadasta: a system of {len(apps)} apps, one broker, one result database"]
        for loaded in apps:
            topology = loaded.topology
            role = (f"worker consuming {_consumes(settings, loaded)}" if loaded.entry.is_worker
                    else "producer")
            lines.append(f"cadasta: {loaded.label}: {loaded.entry.spec} "
                         f"({loaded.app.main or 'unnamed'}), {role}; work queues "
                         f"{', '.join(topology.work_queues)}; platform queue "
                         f"{topology.platform_queue}")
        if settings.external_queues:
            lines.append(f"cadasta: consumed outside the run: "
                         f"{', '.join(settings.external_queues)}")
    for loaded in apps:
        whose = "the app's" if len(apps) == 1 else f"{loaded.label}'s"
        replaced = _broker_replaced(loaded, whose)
        lines += ([] if replaced is None else [replaced]) + _least_privilege(loaded, whose)
    return lines + infrastructure
