"""Apply ``database/init.sql`` and describe the server it was applied to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files

import psycopg
from psycopg.rows import class_row

from storecast.db import Conn, scalar


@dataclass(frozen=True)
class ServerInfo:
    """Versions and capabilities of the connected server."""

    server_version: str
    server_version_num: int
    pgvector_version: str | None
    pgvector_available: str | None
    schema_version: int | None
    data_directory: str | None

    @property
    def has_iterative_index_scans(self) -> bool:
        """pgvector >= 0.8 can keep scanning an HNSW index until a filter is satisfied."""
        version = self.pgvector_version or self.pgvector_available
        if version is None:
            return False
        major, minor = (int(part) for part in version.split(".")[:2])
        return (major, minor) >= (0, 8)


def init_sql() -> str:
    """The text of ``database/init.sql`` shipped with the package."""
    return files("storecast.database").joinpath("init.sql").read_text(encoding="utf-8")


def latest_version() -> int:
    """The newest schema version ``init.sql`` records (its last ``raw.schema_versions`` row)."""
    versions = re.findall(r"insert into raw\.schema_versions[^;]*?values \((\d+),", init_sql(), flags=re.S)
    return max(int(v) for v in versions)


def _schema_version(conn: Conn) -> int | None:
    """The schema version recorded in the database (None before ``init.sql`` ran)."""
    if not scalar(conn, "select to_regclass('raw.schema_versions') is not null"):
        return None
    version: int | None = scalar(conn, "select max(version) from raw.schema_versions")
    return version


def apply_schema(conn: Conn) -> int:
    """Apply ``init.sql`` in one transaction and return the schema version now in force.

    Every statement in the file is idempotent, so this is safe to run on a
    database that already has the schema. A transaction-level advisory lock
    keeps two concurrent ``db init`` runs from racing on ``create ... if not exists``.
    """
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('storecast.db_init'))")
        conn.execute(init_sql().encode())
        version = _schema_version(conn)
    if version is None:
        raise RuntimeError("init.sql ran but raw.schema_versions is empty")
    return version


def ensure_schema(conn: Conn) -> int:
    """The schema version in force, migrating first only when the database is behind
    ``init.sql`` (a new database, or one made by an older storecast); a database that is
    up to date runs no DDL."""
    version = _schema_version(conn)
    if version is not None and version >= latest_version():
        return version
    return apply_schema(conn)


@dataclass(frozen=True)
class _Versions:
    server_version: str
    server_version_num: int
    pgvector_version: str | None
    pgvector_available: str | None


def server_info(conn: Conn) -> ServerInfo:
    """Read the server version, pgvector's version and the storecast schema version."""
    versions = (
        conn.cursor(row_factory=class_row(_Versions))
        .execute(
            """
            select current_setting('server_version') as server_version,
                   current_setting('server_version_num')::int as server_version_num,
                   (select extversion from pg_extension where extname = 'vector') as pgvector_version,
                   (select default_version from pg_available_extensions where name = 'vector')
                       as pgvector_available
            """
        )
        .fetchone()
    )
    assert versions is not None
    schema_version = _schema_version(conn)
    try:
        # Needs superuser or pg_read_all_settings; used only to tell servers apart.
        data_directory: str | None = scalar(conn, "select current_setting('data_directory')")
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
        data_directory = None
    return ServerInfo(
        server_version=versions.server_version,
        server_version_num=versions.server_version_num,
        pgvector_version=versions.pgvector_version,
        pgvector_available=versions.pgvector_available,
        schema_version=schema_version,
        data_directory=data_directory,
    )
