"""The verdict as Markdown, for people: the verdict first, a table per app of
its groups' outcomes, a Mermaid picture of the deployment with what failed
marked, each failure's saw/needs/fix. Made from the JSON document alone
(``reports.document``): plain data in, text out."""

from __future__ import annotations

import html
import re
from typing import Any

OUTCOMES = ("passed", "failed", "error", "skipped", "not run")
SIGNS = {"conforms": "✅", "conforms-as-producer": "✅", "does-not-conform": "❌"}
#: What a failing check's message says, in the order it says it.
PARTS = ("saw", "needs", "fix")

#: The Mermaid classes of the picture: what failed, what is idle (a queue no app
#: of the run consumes), and the kinds of node.
STYLES = (
    "classDef app fill:#eef2ff,stroke:#4f5b93",
    "classDef exchange fill:#fff7e6,stroke:#b7791f",
    "classDef queue fill:#f0fff4,stroke:#2f855a",
    "classDef monitor fill:#e6fffa,stroke:#2c7a7b,stroke-width:2px",
    "classDef results fill:#f7fafc,stroke:#4a5568",
    "classDef idle fill:#f7f7f7,stroke:#999,stroke-dasharray:4 3,color:#666",
    "classDef failed fill:#fff5f5,stroke:#c53030,stroke-width:3px,color:#9b2c2c",
)
FAILED_LINK = "stroke:#c53030,stroke-width:3px,color:#c53030"
IDLE_LINK = "stroke:#999,stroke-dasharray:4 3"
#: A worker's checks that fail when what it publishes does not land where the
#: platform needs it (its task in its queue and in the monitor).
FAN_OUT = ("task_lands_once_in_its_queue_and_once_in_the_monitor",
           "followups_scheduled_in_the_worker_reach_the_monitor",
           "errback_for_another_worker_is_forwarded")


def _text(value: Any) -> str:
    """``value`` as Markdown text, shown as it is (no markup, no HTML)."""
    escaped = html.escape(str(value), quote=False)
    return re.sub(r"([\\`*_\[\]|~])", r"\\\1", escaped)


def _code(value: Any) -> str:
    """``value`` as inline code."""
    text = str(value)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _name(check: dict[str, Any]) -> str:
    """A check's name, without its queue."""
    return check["id"].split("::")[-1].partition("[")[0]


class _Checks:
    """The checks of the document, asked by app, group and name."""

    def __init__(self, checks: list[dict[str, Any]]) -> None:
        self.checks = checks

    def failed(self, app: str, group: str | None = None,
               names: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        return [c for c in self.checks if c["outcome"] == "failed" and c["app"] == app
                and (group is None or c["group"] == group)
                and (names is None or _name(c) in names)]

    def system_failed(self, name: str) -> bool:
        return bool(self.failed("system", "system", (name,)))


class Picture:
    """A Mermaid flowchart of the deployment drawn as the data flows, left to
    right: the apps publish to their exchange; its bindings put each message
    in queues; each worker consumes its queues, and the platform's sync-tasks
    reads the monitor; the workers write results, which the platform joins.
    Every arrow points right. What failed is red, what no app of the run
    consumes dashed."""

    def __init__(self, found: dict[str, Any]) -> None:
        self.found = found
        self.checks = _Checks(found.get("checks", []))
        self.nodes: list[str] = []
        #: (start, end, text, arrow, state: None, 'failed' or 'idle')
        self.links: list[tuple[str, str, str, str, str | None]] = []
        self.classes: dict[str, list[str]] = {}
        self.ids: dict[tuple[str, str], str] = {}

    # -- nodes and links --------------------------------------------------------
    def node_id(self, kind: str, key: str, name: str) -> str:
        """The Mermaid id of ``key`` among nodes of ``kind`` (app, x: exchange,
        q: queue, m: monitor, db: results): made of ``name``, readable, unique."""
        if (kind, key) not in self.ids:
            base = f"{kind}_{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}".rstrip("_")
            taken = set(self.ids.values())
            node, n = base, 1
            while node in taken:
                n += 1
                node = f"{base}_{n}"
            self.ids[(kind, key)] = node
        return self.ids[(kind, key)]

    @staticmethod
    def label(*lines: str) -> str:
        """A quoted Mermaid label of ``lines``, each character shown as it is."""
        def escape(text: str) -> str:
            text = text.replace("#", "#35;").replace('"', "#quot;")
            return text.replace("<", "#lt;").replace(">", "#gt;")
        return '"' + "<br/>".join(escape(line) for line in lines if line) + '"'

    def node(self, node: str, shape: str, lines: list[str], kind: str,
             state: str | None = None) -> str:
        """Draw ``node`` once, in ``shape`` ('[[|]]': the label goes at '|')."""
        if not any(node in nodes for nodes in self.classes.values()):
            opening, closing = shape.split("|")
            self.nodes.append(f"  {node}{opening}{self.label(*lines)}{closing}")
            self.classes.setdefault(state or kind, []).append(node)
        return node

    def link(self, start: str, end: str, text: str, arrow: str = "-->",
             state: str | None = None) -> None:
        self.links.append((start, end, text, arrow, state))

    def app(self, label: str) -> str:
        return self.node_id("app", label, label)

    def worker(self, label: str) -> str:
        """The app's worker, right of the queues it consumes."""
        return self.node(self.node_id("w", label, label), "(|)",
                         [f"{label}'s worker", "celery worker"], "app")

    def sync_tasks(self, label: str) -> str:
        """The platform's sync-tasks (of the producer ``label``), right of the
        monitor it reads."""
        return self.node(self.node_id("s", label, label), "([|])",
                         [f"{label}'s sync-tasks", "the platform"], "app")

    def exchange(self, name: str, kind: str) -> str:
        return self.node_id("x", f"{name}:{kind}", name or "default")

    def queue(self, region: str, sqs_name: str, name: str, monitor: bool) -> str:
        return self.node_id("m" if monitor else "q", f"{region}:{sqs_name}", name)

    # -- the picture ------------------------------------------------------------
    def draw(self) -> str:
        topology = self.found.get("topology") or {"apps": [], "system": {}}
        apps, system = topology["apps"], topology["system"]
        self.agree_failed = self.checks.system_failed("apps_agree_on_exchange_queues_and_region")
        self.drift = system.get("drift", {}) if self.agree_failed else {}
        self.producers = [app["label"] for app in apps if app["role"] == "producer"]
        queues = system.get("queues", [])
        for app in apps:
            self._app(app)
        for exchange in system.get("exchanges", []):
            self._exchange(exchange["name"], exchange["type"], exchange["apps"])
        for queue in queues:
            self._queue(queue)
        places = system.get("results", [])
        for app in apps:
            self._publishes(app)
        for queue in queues:
            self._bindings(queue)
        for queue in queues:
            self._consumers(queue)
        for app in apps:
            self._monitor_binding(app)
        self._results(places)
        return self.source()

    def _app(self, app: dict[str, Any]) -> None:
        label = app["label"]
        failed = self.checks.failed(label)
        drifts = self.drift.get(label, [])
        lines = [label, "worker" if app["role"] == "worker" else "producer (the platform)"]
        if failed:
            lines.append(f"✗ {len(failed)} check{'s' if len(failed) != 1 else ''} failed")
        if drifts:
            lines.append(f"✗ differs: {', '.join(drifts)}")
        self.node(self.app(label), "(|)", lines, "app", "failed" if failed or drifts else None)

    def _exchange(self, name: str, kind: str, publishers: list[str]) -> str:
        """The exchange ``name`` of type ``kind``; failed when an app that
        publishes to it failed the check of its type."""
        failed = any(self.checks.failed(label, "exchange", ("default_exchange_is_topic",))
                     for label in publishers)
        return self.node(self.exchange(name, kind), "{{|}}",
                         [name or "(the default exchange)", f"{kind} exchange"], "exchange",
                         "failed" if failed else None)

    def _queue(self, queue: dict[str, Any]) -> None:
        node = self.queue(queue["region"], queue["sqs_name"], queue["name"], queue["monitor"])
        lines = [queue["name"], f"SQS {queue['sqs_name']}"]
        state = None
        if queue["monitor"]:
            lines.append("the monitor")
            if self.producers and not queue["read_by"]:
                lines.append(("✗ " if self.agree_failed else "") + "no platform reads it")
                state = "failed" if self.agree_failed else "idle"
            self.node(node, "[(|)]", lines, "monitor", state)
            return
        consumers = queue["consumers"]
        one_consumer_failed = self.checks.system_failed("every_queue_has_exactly_one_consumer")
        if queue["external"]:
            lines.append("consumed outside the run")
        elif not consumers:
            lines.append(("✗ " if one_consumer_failed else "") + "no consumer in this run")
            state = "failed" if one_consumer_failed else "idle"
        elif len(consumers) > 1 and queue["name"] != "celery" and one_consumer_failed:
            lines.append(f"✗ consumed by {len(consumers)} workers")
            state = "failed"
        self.node(node, "[[|]]", lines, "queue", state)

    def _publishes(self, app: dict[str, Any]) -> None:
        label = app["label"]
        why = []
        if self.drift.get(label):
            why.append(f"differs: {', '.join(self.drift[label])}")
        if self.checks.failed(label, "monitor", FAN_OUT):
            why.append("misses the monitor or its queue")
        if self.checks.failed(label, "routing"):
            why.append("routes astray")
        exchange = self.exchange(app["exchange"]["name"], app["exchange"]["type"])
        self.link(self.app(label), exchange, "✗ publishes: " + "; ".join(why) if why
                  else "publishes", "==>", "failed" if why else None)

    def _bindings(self, queue: dict[str, Any]) -> None:
        """An arrow per binding key; where the apps bind the queue differently,
        each naming the apps that declare it."""
        node = self.queue(queue["region"], queue["sqs_name"], queue["name"], queue["monitor"])
        differ = len(queue["bindings"]) > 1
        for binding in queue["bindings"]:
            exchange = self._exchange(binding["exchange"], binding["type"], [])
            text = binding["routing_key"] or "(no key)"
            if differ:
                text += f" (bound by {', '.join(binding['apps'])})"
            self.link(exchange, node, text)

    def _consumers(self, queue: dict[str, Any]) -> None:
        node = self.queue(queue["region"], queue["sqs_name"], queue["name"], queue["monitor"])
        for consumer in queue["consumers"]:
            wrong = queue["monitor"] and self.checks.failed(
                consumer, "monitor", ("worker_does_not_consume_the_monitor_queue",))
            self.link(node, self.worker(consumer), "✗ consumed" if wrong else "consumed",
                      "-->", "failed" if wrong else None)
        if not queue["monitor"]:
            return
        for reader in queue["read_by"]:
            self.link(node, self.sync_tasks(reader), "read by sync-tasks")
        if not self.producers:
            sync = self.node(self.node_id("platform", "sync-tasks", "sync_tasks"), "([|])",
                             ["the platform's sync-tasks", "(not in this run)"], "app", "idle")
            self.link(node, sync, "read by", state="idle")

    def _monitor_binding(self, app: dict[str, Any]) -> None:
        """An app whose monitor queue is not bound with '#' on its exchange: what
        it publishes never reaches the monitor."""
        monitor = app["monitor"]
        if "#" in monitor["binding_keys"]:
            return
        failed = self.checks.failed(app["label"], "monitor",
                                    ("platform_queue_is_a_fifo_queue_bound_with_hash",))
        keys = ", ".join(monitor["binding_keys"]) or "none"
        node = self.queue(app["region"], monitor["sqs_name"], monitor["queue"], True)
        self.link(self.app(app["label"]), node,
                  f"{'✗ ' if failed else ''}no # binding (its keys: {keys})", "-.-x",
                  "failed" if failed else "idle")

    def _results(self, places: list[dict[str, Any]]) -> None:
        """Where results go: the platform's place (read by a producer, else the
        one most workers write to), and any other drawn red when the system
        check that every app writes where the platform reads failed."""
        apart = self.checks.system_failed(
            "every_app_writes_results_where_the_platform_reads_them")
        usual = max(places, key=lambda p: (len(p["readers"]), len(p["writers"])), default=None)
        queues = [node for kind, nodes in self.classes.items() for node in nodes
                  if node.startswith(("q_", "m_"))]
        for place in places:
            name = (place["database"] or "").rpartition("/")[2] or "results"
            node = self.node_id("db", f"{place['database'] or place['backend']}:"
                                      f"{place['table']}", name)
            odd = apart and place is not usual and bool(place["writers"])
            lines = ["results", (f"PostgreSQL {place['database']}" if place["database"]
                                 else place["backend"] or "no result backend"),
                     f"table {place['table']}"]
            if odd:
                lines.append("✗ not where the platform reads")
            self.node(node, "[(|)]", lines, "results", "failed" if odd else None)
            if queues:  # unseen: it only puts the database right of the queues
                self.link(queues[0], node, "", "~~~")
            for writer in place["writers"]:
                failed = odd or bool(self.checks.failed(writer, "result"))
                self.link(self.worker(writer), node,
                          "✗ writes results" if failed else "writes results", "-.->",
                          "failed" if failed else None)
            for reader in place["readers"]:
                self.link(self.sync_tasks(reader), node, "joins results", "-.->")

    def source(self) -> str:
        lines = ["flowchart LR", *self.nodes]
        styled: dict[str, list[str]] = {"failed": [], "idle": []}
        for n, (start, end, text, arrow, state) in enumerate(self.links):
            if arrow == "-.-x":
                lines.append(f"  {start} -. {self.label(text)} .-x {end}")
            elif not text:
                lines.append(f"  {start} {arrow} {end}")
            else:
                lines.append(f"  {start} {arrow}|{self.label(text)}| {end}")
            if state is not None:
                styled[state].append(str(n))
        lines += [f"  {style}" for style in STYLES]
        lines += [f"  class {','.join(nodes)} {kind}" for kind, nodes in self.classes.items()]
        for state, style in (("failed", FAILED_LINK), ("idle", IDLE_LINK)):
            if styled[state]:
                lines.append(f"  linkStyle {','.join(styled[state])} {style}")
        return "\n".join(lines)


def picture(found: dict[str, Any]) -> str:
    """The Mermaid source of the deployment's picture (without the fence)."""
    return Picture(found).draw()


def _verdicts(found: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """(label, verdict) of each app, then the system's, with several apps; of
    the one app otherwise."""
    if "apps" in found:
        verdicts = [(label, app["verdict"]) for label, app in found["apps"].items()]
        if "system" in found:
            verdicts.append(("system", found["system"]["verdict"]))
        return verdicts
    apps = found.get("topology", {}).get("apps", [])
    return [(apps[0]["label"] if apps else found.get("app", "app"), found["verdict"])]


def _table(checks: list[dict[str, Any]]) -> list[str]:
    """A table of the groups of ``checks`` and their outcomes."""
    groups: dict[str, dict[str, int]] = {}
    for check in checks:
        counts = groups.setdefault(check["group"], {})
        counts[check["outcome"]] = counts.get(check["outcome"], 0) + 1
    shown = [o for o in OUTCOMES if any(o in counts for counts in groups.values())]
    lines = ["| group | " + " | ".join(shown) + " |", "|---" * (len(shown) + 1) + "|"]
    for group, counts in groups.items():
        cells = []
        for outcome in shown:
            n = counts.get(outcome, 0)
            bad = outcome in ("failed", "error") and n
            cells.append(f"**{n}** ❌" if bad else str(n) if n else "")
        lines.append(f"| {_text(group)} | " + " | ".join(cells) + " |")
    return lines


def split_message(message: str) -> tuple[str, dict[str, str]]:
    """A failing check's message: (what it protects against, {saw, needs, fix});
    the parts empty when the message has none (a check that raised)."""
    lead: list[str] = []
    parts: dict[str, list[str]] = {}
    current = None
    for line in message.splitlines():
        stripped = line.strip()
        head, colon, rest = stripped.partition(":")
        if colon and head in PARTS and line.startswith("  "):
            current = head
            parts[current] = [rest.strip()]
        elif current is not None:
            parts[current].append(stripped)
        else:
            lead.append(stripped)
    return " ".join(filter(None, lead)), {k: " ".join(filter(None, v)) for k, v in parts.items()}


def _failure(check: dict[str, Any]) -> list[str]:
    lead, parts = split_message(check["message"])
    lines = [f"#### ❌ {_code(check['id'])}", ""]
    if parts:
        if lead:
            lines += [_text(lead), ""]
        lines += [f"- **{part}:** {_text(parts[part])}" for part in PARTS if part in parts]
    else:
        lines += ["```text", check["message"].strip().replace("```", "'''"), "```"]
    return lines + [""]


def _versions(found: dict[str, Any]) -> str:
    names = {"python": "Python", "celery": "Celery", "kombu": "kombu", "moto": "moto",
             "postgresql": "PostgreSQL"}
    versions = found.get("versions", {})
    said = [f"{title} {versions[key]}" for key, title in names.items() if versions.get(key)]
    return ", ".join(said)


def markdown(found: dict[str, Any]) -> str:
    """The Markdown report of the JSON document ``found``."""
    verdict = found["verdict"]
    sign = SIGNS.get(verdict["kind"], "⚠️")
    lines = [f"## {sign} Cadasta conformance: {_text(verdict['text'])}", ""]
    checks = found.get("checks", [])
    verdicts = _verdicts(found)
    several = "apps" in found
    for label, said in verdicts:
        of = [c for c in checks if c["app"] == label]
        title = f"{SIGNS.get(said['kind'], '⚠️')} {_text(label)}: {_text(said['text'])}"
        if several:
            lines += [f"### {title}", ""]
        app = next((app for app in found.get("topology", {}).get("apps", [])
                    if app["label"] == label), None)
        if app is not None:
            consuming = f", consuming {', '.join(app['consumes'])}" if app["consumes"] else ""
            lines += [f"{_code(app['app'])}, {app['role']}{consuming}", ""]
        if of:
            lines += [*_table(of), ""]
    lines += ["### The deployment", "",
              "Each app publishes to the exchange; each binding key puts a message in a "
              "queue; workers consume the queues; the platform's sync-tasks reads the "
              "monitor; results go to the database. Red: what failed. Dashed: what no app "
              "of this run consumes.", "",
              "```mermaid", picture(found), "```", ""]
    failures = [c for c in checks if c["outcome"] == "failed"]
    if failures:
        lines += [f"### What failed ({len(failures)})", ""]
        for check in failures:
            lines += _failure(check)
    errors = [c for c in checks if c["outcome"] == "error"]
    if errors:
        lines += [f"### What could not run ({len(errors)})", ""]
        for check in errors:
            lines += [f"#### ⚠️ {_code(check['id'])}", "", "```text",
                      check["message"].strip().replace("```", "'''"), "```", ""]
    horizon = found.get("horizon")
    if horizon and horizon.get("celery"):
        lines += [f"The verdict holds for Celery {_text(horizon['celery'])}, the series it "
                  "was judged on.", ""]
        lines += [f"- ⚠️ {_text(line)}" for line in horizon.get("later", [])]
        lines += [""] if horizon.get("later") else []
    ran = sum(c["duration"] or 0 for c in checks if c.get("duration") is not None)
    lines += [f"Judged under {_versions(found)}; the checks took {ran:.1f} s. "
              f"pytest-cadasta report schema {found.get('schema')}.", ""]
    return "\n".join(lines)
