"""Resolve where storecast keeps its state and which Postgres it talks to.

This is the single place that decides between the embedded server (the
default) and an external one. Python code connects with :attr:`Settings.conninfo`;
dbt reads the same values through the environment variables returned by
:func:`dbt_environment`, which ``profiles.yml`` maps onto its fields.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

#: Name of the database storecast creates inside the embedded server.
EMBEDDED_DATABASE = "storecast"
#: Superuser the embedded server is initialised with.
EMBEDDED_USER = "postgres"

# libpq variables that, when set, mean "connect where libpq says", not to the
# embedded server. PGPASSWORD or PGUSER alone do not name a server.
_SERVER_SELECTING_PG_VARS = ("PGHOST", "PGHOSTADDR", "PGSERVICE")


class SettingsError(RuntimeError):
    """Raised when the environment describes an unusable configuration."""


@dataclass(frozen=True)
class Settings:
    """Where storecast keeps state and how it reaches Postgres.

    Attributes
    ----------
    home:
        State folder (``STORECAST_HOME``, default ``.storecast`` in the working
        directory): the embedded data directory, logs and exported models.
    external_conninfo:
        Connection string of an external server, or ``None`` for the embedded one.
    source:
        Human-readable origin of the connection settings, for ``db status``.
    """

    home: Path
    external_conninfo: str | None
    source: str

    @property
    def embedded(self) -> bool:
        """Whether storecast manages the server itself."""
        return self.external_conninfo is None

    @property
    def pgdata(self) -> Path:
        """Data directory of the embedded server."""
        return self.home / "pgdata"

    @property
    def runtime_dir(self) -> Path:
        """Private runtime folder (lock files) of the embedded server."""
        return self.home / "run"

    @property
    def models_dir(self) -> Path:
        """Folder where exported ONNX files are written for external serving."""
        return self.home / "models"

    @property
    def dbt_dir(self) -> Path:
        """Where dbt writes its target (compiled SQL, manifest, catalog) and logs."""
        return self.home / "dbt"

    @property
    def conninfo(self) -> str:
        """A libpq connection string for the configured server.

        For the embedded server this reads the socket location from the running
        server, so it raises :class:`SettingsError` when that server is down.
        """
        if self.external_conninfo is not None:
            return self.external_conninfo
        return embedded_conninfo(self)


def get_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from environment variables.

    Resolution order: ``STORECAST_DATABASE_URL``; then the standard libpq
    variables (``PGHOST``, ``PGHOSTADDR`` or ``PGSERVICE``, with ``PGPORT``,
    ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE`` as libpq reads them); otherwise
    the embedded server under ``STORECAST_HOME``.
    """
    env = os.environ if environ is None else environ
    home = Path(env.get("STORECAST_HOME") or ".storecast").expanduser().absolute()

    url = env.get("STORECAST_DATABASE_URL", "").strip()
    if url:
        try:
            conninfo_to_dict(url)
        except Exception as exc:  # psycopg raises ProgrammingError subclasses
            raise SettingsError(f"STORECAST_DATABASE_URL is not a valid connection string: {exc}") from exc
        return Settings(home=home, external_conninfo=url, source="STORECAST_DATABASE_URL")

    present = [name for name in _SERVER_SELECTING_PG_VARS if env.get(name)]
    if present:
        # An empty conninfo makes libpq read the PG* variables itself.
        return Settings(home=home, external_conninfo="", source=f"libpq environment ({', '.join(present)})")

    return Settings(home=home, external_conninfo=None, source=f"embedded server in {home / 'pgdata'}")


#: The environment variable holding the HTTP service's token (a secret, so never a file setting).
SERVICE_TOKEN_VAR = "STORECAST_SERVICE_TOKEN"


def service_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The token ``storecast serve`` requires on write endpoints, or ``None`` when unset."""
    env = os.environ if environ is None else environ
    return env.get(SERVICE_TOKEN_VAR, "").strip() or None


def conninfo_fields(conninfo: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Resolve a connection string into explicit libpq fields.

    Fields missing from ``conninfo`` are taken from the ``PG*`` variables the
    way libpq would, so the result describes the server actually used.
    """
    env = os.environ if environ is None else environ
    fields = {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
    fallbacks = {
        "host": "PGHOST",
        "port": "PGPORT",
        "user": "PGUSER",
        "password": "PGPASSWORD",
        "dbname": "PGDATABASE",
    }
    for field, var in fallbacks.items():
        if field not in fields and env.get(var):
            fields[field] = env[var]
    return fields


def dbt_environment(conninfo: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment variables that point ``profiles.yml`` at ``conninfo``.

    ``profiles.yml`` reads ``STORECAST_PG*`` first and the standard ``PG*``
    variables second, so exporting these never changes how storecast itself
    resolves its server.
    """
    fields = conninfo_fields(conninfo, environ)
    out = {
        "STORECAST_PGHOST": fields.get("host", "localhost"),
        "STORECAST_PGPORT": fields.get("port", "5432"),
        "STORECAST_PGUSER": fields.get("user", os.environ.get("USER", "postgres")),
        "STORECAST_PGDATABASE": fields.get("dbname", fields.get("user", "postgres")),
    }
    if "password" in fields:
        out["STORECAST_PGPASSWORD"] = fields["password"]
    return out


def conninfo_to_url(conninfo: str, environ: Mapping[str, str] | None = None) -> str:
    """Render a connection string as a ``postgresql://`` URI that psql accepts."""
    from urllib.parse import quote

    fields = conninfo_fields(conninfo, environ)
    user = quote(fields.pop("user", ""), safe="")
    password = fields.pop("password", None)
    dbname = quote(fields.pop("dbname", ""), safe="")
    host = fields.pop("host", "")
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    query: dict[str, str] = {}
    if host.startswith("/"):
        # A socket directory cannot sit in the authority part of a URI.
        query["host"] = host
        host = ""
    elif host and "port" in fields:
        host = f"{host}:{fields.pop('port')}"
    query.update(fields)
    qs = "&".join(f"{k}={quote(v, safe='/')}" for k, v in query.items())
    return f"postgresql://{auth}{host}/{dbname}" + (f"?{qs}" if qs else "")


__all__ = [
    "EMBEDDED_DATABASE",
    "EMBEDDED_USER",
    "Settings",
    "SettingsError",
    "conninfo_fields",
    "conninfo_to_url",
    "dbt_environment",
    "get_settings",
]


@dataclass(frozen=True)
class EmbeddedStatus:
    """What the embedded data directory says about its server."""

    initialised: bool
    running: bool
    pid: int | None
    socket_dir: Path | None
    port: int | None
    #: The System V shared-memory segment the server holds (line 7 of postmaster.pid), which
    #: a killed server's backends stay attached to until they notice it died.
    shm_id: str | None = None


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
    segment = lines[6].split() if len(lines) > 6 else []
    shm_id = segment[1] if len(segment) > 1 else None
    return EmbeddedStatus(initialised, _alive(pid), pid, socket_dir, port, shm_id)


def process_state(pid: int) -> str | None:
    """Linux's state letter for process ``pid`` (``R``, ``S``, ``Z`` for a zombie, ...), or
    ``None`` when there is no such process or no /proc to ask."""
    try:
        # The state follows the command name in parentheses, which may itself hold spaces.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs. A postmaster killed outright stays a zombie until its
    parent reaps it, which in a container may take minutes: it still answers a signal,
    but accepts no connection, so a zombie counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the process exists but belongs to another user
        pass
    return process_state(pid) not in {"Z", "X"}


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
