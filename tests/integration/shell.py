"""storecast commands run as a user would, against a database of their own on the session server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from typer.testing import CliRunner, Result

from storecast.cli import app
from storecast.settings import Settings, get_settings


def fresh_database(pg_settings: Settings, name: str) -> str:
    """A fresh database on the session server; returns its connection string."""
    with psycopg.connect(pg_settings.conninfo, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")
        conn.execute(f"create database {name}")
    fields = {k: str(v) for k, v in conninfo_to_dict(pg_settings.conninfo).items() if v is not None}
    return make_conninfo("", **{**fields, "dbname": name})


class Shell:
    """Runs storecast commands against one database with one settings file, as a user would."""

    def __init__(self, pg_settings: Settings, database: str, settings_file: Path) -> None:
        self.conninfo = fresh_database(pg_settings, database)
        self.env = {
            "STORECAST_HOME": str(pg_settings.home),
            "STORECAST_DATABASE_URL": self.conninfo,
            "STORECAST_CONFIG": str(settings_file),
            "PGHOST": "",
        }
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args), env=self.env)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == 0, (
            f"storecast {' '.join(args)} exited {result.exit_code}:\n{result.output}"
        )
        return result.output

    def one(self, query: str, params: Sequence[object] | Mapping[str, object] | None = None) -> object:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            row = conn.execute(query, params).fetchone()
        assert row is not None
        return row[0]

    def rows(
        self, query: str, params: Sequence[object] | Mapping[str, object] | None = None
    ) -> list[tuple[object, ...]]:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    @property
    def settings(self) -> Settings:
        return get_settings(
            {"STORECAST_HOME": self.env["STORECAST_HOME"], "STORECAST_DATABASE_URL": self.conninfo}
        )
