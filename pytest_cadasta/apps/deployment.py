"""The run's deployment as plain data, for the reports: each app's topology and
the system's (the exchanges, each SQS queue with its bindings and consumers,
the monitor and who reads it, where results go), read from the apps'
``Topology`` alone, never with a password."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_cadasta.apps.loader import LoadedApp
    from pytest_cadasta.basics.topology import Topology

#: What every app of a system must agree on: (what, its value in a topology),
#: as the system check ``apps_agree_on_exchange_queues_and_region`` compares.
AGREED: tuple[tuple[str, Callable[[Topology], str]], ...] = (
    ("exchange", lambda t: t.exchange),
    ("exchange type", lambda t: t.exchange_type),
    ("platform queue", lambda t: t.platform_queue),
    ("region", lambda t: t.region),
    ("queue name prefix", lambda t: t.queue_name_prefix),
    ("QUEUES", lambda t: ",".join(sorted(t.work_queues))),
)


def _consumes(loaded: LoadedApp) -> list[str] | None:
    """The queues the app's worker consumes in production, the monitor too if
    it does (None: it runs none)."""
    return list(loaded.topology.in_production) if loaded.entry.is_worker else None


def _results(topology: Topology) -> dict[str, Any] | None:
    results = topology.results
    if results is None:
        return None
    return {"backend": results.backend, "database": results.database, "table": results.table}


def app_topology(loaded: LoadedApp) -> dict[str, Any]:
    """One app: its role, exchange, SQS naming, queues with their bindings, the
    monitor, what its worker consumes, where its results go."""
    topology = loaded.topology
    return {
        "label": loaded.label,
        "app": loaded.entry.spec,
        "role": "worker" if loaded.entry.is_worker else "producer",
        "exchange": {"name": topology.exchange, "type": topology.exchange_type},
        "region": topology.region,
        "queue_name_prefix": topology.queue_name_prefix,
        "work_queues": list(topology.work_queues),
        "monitor": {
            "queue": topology.platform_queue,
            "sqs_name": topology.sqs_name(topology.platform_queue),
            "binding_keys": [b.routing_key for b in topology.bindings
                             if b.queue == topology.platform_queue
                             and b.exchange == topology.exchange],
        },
        "bindings": [{"queue": b.queue, "sqs_name": topology.sqs_name(b.queue),
                      "exchange": b.exchange, "exchange_type": b.exchange_type,
                      "routing_key": b.routing_key} for b in topology.bindings],
        "consumes": _consumes(loaded),
        "consumes_as": (None if not loaded.entry.is_worker else
                        "-Q" if topology.production_queues is not None else "default"),
        "results": _results(topology),
    }


def drift(apps: Sequence[LoadedApp]) -> dict[str, list[str]]:
    """Label -> what the app has that the others do not (most of them agree on
    the other value), of what every app must agree on."""
    found: dict[str, list[str]] = {}
    if len(apps) < 2:
        return found
    for what, value in AGREED:
        values = {loaded.label: value(loaded.topology) for loaded in apps}
        usual, _ = Counter(values.values()).most_common(1)[0]
        for label, seen in values.items():
            if seen != usual:
                found.setdefault(label, []).append(what)
    return found


def system_topology(apps: Sequence[LoadedApp],
                    external_queues: Sequence[str] = ()) -> dict[str, Any]:
    """The apps together: each exchange and who publishes to it; each SQS queue
    (region and name) with its bindings (and which apps declare them), the
    workers that consume it and, for a monitor, the platform that reads it;
    each place results go, with its writers (workers) and readers (producers)."""
    exchanges: dict[tuple[str, str], list[str]] = {}
    queues: dict[tuple[str, str], dict[str, Any]] = {}
    results: dict[tuple[str, str], dict[str, Any]] = {}

    def queue(topology: Topology, name: str) -> dict[str, Any]:
        key = (topology.region, topology.sqs_name(name))
        if key not in queues:
            queues[key] = {"name": name, "sqs_name": key[1], "region": key[0],
                           "monitor": False, "external": name in external_queues,
                           "bindings": [], "consumers": [], "read_by": []}
        return queues[key]

    for loaded in apps:
        topology, label = loaded.topology, loaded.label
        exchanges.setdefault((topology.exchange, topology.exchange_type), []).append(label)
        for binding in topology.bindings:
            entry = queue(topology, binding.queue)
            found = next((b for b in entry["bindings"]
                          if (b["exchange"], b["type"], b["routing_key"])
                          == (binding.exchange, binding.exchange_type, binding.routing_key)),
                         None)
            if found is None:
                found = {"exchange": binding.exchange, "type": binding.exchange_type,
                         "routing_key": binding.routing_key, "apps": []}
                entry["bindings"].append(found)
            if label not in found["apps"]:
                found["apps"].append(label)
        monitor = queue(topology, topology.platform_queue)
        monitor["monitor"] = True
        if not loaded.entry.is_worker:
            monitor["read_by"].append(label)
        for name in _consumes(loaded) or ():
            entry = queue(topology, name)
            if label not in entry["consumers"]:
                entry["consumers"].append(label)
        if topology.results is not None:
            where = (topology.results.database or topology.results.backend or "",
                     topology.results.table)
            place = results.setdefault(where, {
                "backend": topology.results.backend, "database": topology.results.database,
                "table": topology.results.table, "writers": [], "readers": []})
            place["writers" if loaded.entry.is_worker else "readers"].append(label)
    return {
        "exchanges": [{"name": name, "type": kind, "apps": labels}
                      for (name, kind), labels in exchanges.items()],
        "queues": list(queues.values()),
        "results": list(results.values()),
        "drift": drift(apps),
    }


def deployment(apps: Sequence[LoadedApp], external_queues: Sequence[str] = ()) -> dict:
    """Every app's topology and the system's."""
    return {"apps": [app_topology(loaded) for loaded in apps],
            "system": system_topology(apps, external_queues)}
