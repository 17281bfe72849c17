"""The Celery series a verdict holds for, and what a later series changes for
each app: a verdict judged on Celery 5.6 says nothing of 5.7, which stores
results in the app's result_serializer (json by default) where 5.6 pickled
them, and the platform reads them with pickle."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_cadasta.apps.loader import LoadedApp

#: The first Celery series that stores results in the app's result_serializer.
STORES_SERIALIZED = (5, 7)
#: The serializers whose results the platform's pickle.loads reads.
READ_BY_THE_PLATFORM = ("cadasta-pickle",)


def celery_series() -> str | None:
    """The series ('5.7') of the Celery the run judged on (None: none)."""
    try:
        return ".".join(version("celery").split(".")[:2])
    except PackageNotFoundError:
        return None


def _before(series: str | None, than: tuple[int, int]) -> bool:
    try:
        return series is not None and tuple(int(p) for p in series.split(".")) < than
    except ValueError:
        return False


def later(apps: list[LoadedApp], several: bool) -> list[str]:
    """What breaks on a later Celery series for each worker app that conforms
    on this one (empty: nothing this run can tell, or judged on the latest)."""
    if not _before(celery_series(), STORES_SERIALIZED):
        return []
    found = []
    for loaded in apps:
        if not loaded.entry.is_worker:
            continue
        serializer = loaded.app.conf.result_serializer
        if serializer in READ_BY_THE_PLATFORM:
            continue
        who = f"{loaded.label}'s" if several else "the app's"
        found.append(
            f"on Celery {'.'.join(map(str, STORES_SERIALIZED))} and later {who} results are "
            f"stored in result_serializer {serializer!r}, not as the pickle the platform "
            "reads: every task page fails (set result_serializer = 'cadasta-pickle', as "
            "cadasta_toolbox.config.Config does, before upgrading)")
    return found


def horizon(apps: list[LoadedApp], several: bool) -> dict:
    """The Celery series judged on, and what a later one breaks (for reports)."""
    return {"celery": celery_series(), "later": later(apps, several)}
