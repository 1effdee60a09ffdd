"""Apply ``database/init.sql`` and describe the server it was applied to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files

import psycopg


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


def apply_schema(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Apply ``init.sql`` in one transaction and return the schema version now in force.

    Every statement in the file is idempotent, so this is safe to run on a
    database that already has the schema. A transaction-level advisory lock
    keeps two concurrent ``db init`` runs from racing on ``create ... if not exists``.
    """
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('storecast.db_init'))")
        conn.execute(init_sql().encode())
        row = conn.execute("select max(version) from raw.schema_versions").fetchone()
    if row is None or row[0] is None:
        raise RuntimeError("init.sql ran but raw.schema_versions is empty")
    return int(str(row[0]))


def ensure_schema(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The schema version in force, migrating first only when the database is behind
    ``init.sql`` (a new database, or one made by an older storecast); a database that is
    up to date runs no DDL."""
    row = conn.execute(
        "select case when to_regclass('raw.schema_versions') is not null then 1 end"
    ).fetchone()
    if row is not None and row[0] is not None:
        found = conn.execute("select max(version) from raw.schema_versions").fetchone()
        if found is not None and found[0] is not None and int(str(found[0])) >= latest_version():
            return int(str(found[0]))
    return apply_schema(conn)


def server_info(conn: psycopg.Connection[tuple[object, ...]]) -> ServerInfo:
    """Read the server version, pgvector's version and the storecast schema version."""
    row = conn.execute(
        """
        select current_setting('server_version'),
               current_setting('server_version_num')::int,
               (select extversion from pg_extension where extname = 'vector'),
               (select default_version from pg_available_extensions where name = 'vector'),
               case when to_regclass('raw.schema_versions') is not null then 1 end
        """
    ).fetchone()
    assert row is not None
    schema_version: int | None = None
    if row[4] is not None:
        found = conn.execute("select max(version) from raw.schema_versions").fetchone()
        schema_version = int(str(found[0])) if found and found[0] is not None else None
    try:
        # Needs superuser or pg_read_all_settings; used only to tell servers apart.
        data_dir_row = conn.execute("select current_setting('data_directory')").fetchone()
        data_directory = str(data_dir_row[0]) if data_dir_row else None
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
        data_directory = None
    return ServerInfo(
        server_version=str(row[0]),
        server_version_num=int(str(row[1])),
        pgvector_version=None if row[2] is None else str(row[2]),
        pgvector_available=None if row[3] is None else str(row[3]),
        schema_version=schema_version,
        data_directory=data_directory,
    )
