"""A deployment's SQS queues, read with the worker's own credentials: which
exist under the app's prefix in its region, and their attributes. Only
ListQueues, GetQueueUrl and GetQueueAttributes are called; each answer is read
once."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pytest_cadasta.basics.errors import NotReached

if TYPE_CHECKING:
    from pytest_cadasta.audit.target import SqsTarget


def _why(exc: BaseException) -> str:
    """What a botocore error says, in one line."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip(": ")
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"


class DeployedQueues:
    """What one app's SQS endpoint holds under its prefix in its region."""

    def __init__(self, target: SqsTarget) -> None:
        self.target = target
        self._client: Any = None
        self._listing: dict[str, str] | None = None
        #: Why the listing failed, once: asked again, the endpoint is not
        #: waited for again.
        self._unreached: NotReached | None = None
        self._attributes: dict[str, dict[str, str]] = {}

    @property
    def where(self) -> str:
        return f"{self.target.endpoint} (region {self.target.region})"

    def client(self) -> Any:
        if self._client is None:
            try:
                self._client = self.target.client()
            except Exception as exc:  # no region, a profile that does not exist...
                raise NotReached(f"no SQS client for {self.where}: {_why(exc)}") from None
        return self._client

    def _call(self, what: str, call: Any) -> Any:
        """``call()``; a failure to reach or be answered is a ``NotReached``
        naming the endpoint (a queue that does not exist is the caller's)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if "NonExistentQueue" in code or code == "QueueDoesNotExist":
                raise
            raise NotReached(f"the SQS endpoint {self.where} refused {what} with the "
                             f"worker's credentials ({self.target.credentials}): "
                             f"{_why(exc)}") from None
        except BotoCoreError as exc:
            raise NotReached(f"the SQS endpoint {self.where} did not answer {what}: "
                             f"{_why(exc)}") from None

    def listing(self) -> dict[str, str]:
        """SQS name -> URL of every queue under the app's prefix (what kombu
        lists as a worker starts); with predefined queues, those whose URL
        answers (kombu lists nothing then, and neither does the audit)."""
        if self._unreached is not None:
            raise NotReached(str(self._unreached))
        if self._listing is None and self.target.predefined:
            self._listing = {name: url for name, url in self.target.predefined
                             if self._answers(name, url)}
        if self._listing is None:
            prefix = self.target.prefix

            def list_all() -> dict[str, str]:
                found: dict[str, str] = {}
                pages = self.client().get_paginator("list_queues").paginate(
                    QueueNamePrefix=prefix, PaginationConfig={"PageSize": 1000})
                for page in pages:
                    for url in page.get("QueueUrls", []):
                        found[url.rsplit("/", 1)[-1]] = url
                return found

            try:
                self._listing = self._call(f"ListQueues (prefix {prefix!r})", list_all)
            except NotReached as exc:
                self._unreached = exc
                raise
        return self._listing

    def _answers(self, sqs_name: str, url: str) -> bool:
        """Whether the predefined queue at ``url`` exists (its attributes kept:
        the one call reads both)."""
        from botocore.exceptions import ClientError

        try:
            reply = self._call(f"GetQueueAttributes of {url}", lambda: self.client()
                               .get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))
        except ClientError:  # no such queue
            return False
        except NotReached as exc:
            self._unreached = exc
            raise
        self._attributes[sqs_name] = reply.get("Attributes", {})
        return True

    def url(self, sqs_name: str) -> str | None:
        return self.listing().get(sqs_name)

    def elsewhere(self, name: str) -> str | None:
        """The URL of a queue called ``name`` itself (without the prefix), if
        there is one the credentials may see; None otherwise."""
        from botocore.exceptions import ClientError

        if not name or name in self.listing():
            return None
        try:
            return self._call("GetQueueUrl", lambda: self.client().get_queue_url(
                QueueName=name)["QueueUrl"])
        except (ClientError, NotReached):
            return None

    def attributes(self, sqs_name: str) -> dict[str, str]:
        """Every attribute of the queue ``sqs_name`` (empty: no such queue)."""
        if sqs_name not in self._attributes:
            url = self.url(sqs_name)
            found: dict[str, str] = {}
            if url is not None:
                reply = self._call(f"GetQueueAttributes of {sqs_name}", lambda: self.client()
                                   .get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))
                found = reply.get("Attributes", {})
            self._attributes[sqs_name] = found
        return self._attributes[sqs_name]

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


def days(seconds: str | int | None) -> str:
    """'4 days (345600 s)' from a number of seconds."""
    if seconds in (None, ""):
        return "unknown"
    value = int(seconds)
    amount = value / 86400
    shown = f"{amount:g} day{'s' if amount != 1 else ''}" if value >= 86400 \
        else f"{value / 3600:g} h" if value >= 3600 else f"{value} s"
    return f"{shown} ({value} s)" if not shown.endswith(" s") else shown


def redrive(attributes: dict[str, str]) -> str:
    """The queue's redrive policy in words: where messages received too often go."""
    policy = attributes.get("RedrivePolicy")
    if not policy:
        return "no redrive policy"
    try:
        parsed = json.loads(policy)
    except ValueError:
        return f"redrive policy {policy}"
    target = str(parsed.get("deadLetterTargetArn", "?")).rsplit(":", 1)[-1]
    return (f"redrive to {target} after {parsed.get('maxReceiveCount', '?')} receives")
