"""An initialised PostgreSQL cluster kept once per machine and PostgreSQL
version, copied for each run: a run pays a copy (a fifth of a second), not
initdb (over a second). Every run still gets a fresh cluster of its own.

The cache lives in ``$PYTEST_CADASTA_CACHE_DIR``, else
``$XDG_CACHE_HOME/pytest-cadasta``, else ``~/.cache/pytest-cadasta``. Runs that
start at once are safe: a template is built aside and renamed into place, and
only a complete one is ever copied. A cache that cannot be written only costs
the initdb it would have saved.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE_VARIABLE = "PYTEST_CADASTA_CACHE_DIR"
#: Part of the key: change it when what a template holds changes (pg_hba.conf).
TEMPLATE_FORMAT = "1"


#: A template being built: ``.building-<pid of the run>-<random>``.
BUILDING = ".building-"


def _remove_dead_builds(cache: Path) -> None:
    """Remove the half-built templates of runs that died building them."""
    for building in cache.glob(f"{BUILDING}*"):
        try:
            pid = int(building.name[len(BUILDING):].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(building, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def cache_root() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "pytest-cadasta" if base else Path.home() / ".cache" / "pytest-cadasta"


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


class ClusterTemplate:
    """The cached cluster for one ``pg_ctl`` (its version and path make the key)."""

    def __init__(self, pg_ctl: str, superuser: str, root: Path | None = None) -> None:
        version = subprocess.run([pg_ctl, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.strip()
        key = "\0".join((TEMPLATE_FORMAT, os.path.realpath(pg_ctl), version, superuser))
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.path = (root or cache_root()) / f"cluster-{digest}"

    @property
    def ready(self) -> bool:
        return (self.path / "PG_VERSION").is_file()

    def copy_to(self, datadir: Path, owner: tuple[int, int] | None = None) -> bool:
        """Copy the template to ``datadir`` (owned by ``owner`` (uid, gid) if
        given); False when there is no template yet. ``cp`` does it outside
        Python, so the rest of pytest goes on meanwhile."""
        if not self.ready:
            return False
        cp = shutil.which("cp")
        if cp is not None:
            subprocess.run([cp, "-R", "-p", str(self.path), str(datadir)], check=True,
                           capture_output=True, timeout=120)
        else:
            shutil.copytree(self.path, datadir, symlinks=True)
        datadir.chmod(0o700)
        if owner is not None:
            _chown_tree(datadir, *owner)
        return True

    def store(self, datadir: Path) -> None:
        """Keep a copy of the freshly initialised, never started ``datadir``."""
        if self.ready:
            return
        building = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _remove_dead_builds(self.path.parent)
            building = Path(tempfile.mkdtemp(prefix=f"{BUILDING}{os.getpid()}-",
                                             dir=self.path.parent))
            shutil.copytree(datadir, building / "data", symlinks=True)
            (building / "data").chmod(0o700)
            # Atomic; another run that stored first makes this fail, harmlessly.
            os.rename(building / "data", self.path)
        except OSError:
            pass
        finally:
            if building is not None:
                shutil.rmtree(building, ignore_errors=True)

    def discard(self) -> None:
        """Forget a template a cluster could not start from."""
        shutil.rmtree(self.path, ignore_errors=True)
