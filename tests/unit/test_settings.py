"""Settings resolution: embedded by default, external from a URL or the libpq environment."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from storecast.settings import (
    SettingsError,
    conninfo_fields,
    conninfo_to_url,
    dbt_environment,
    embedded_status,
    get_settings,
    process_state,
)


def test_embedded_is_the_default_and_lives_under_storecast_home(tmp_path: Path) -> None:
    settings = get_settings({"STORECAST_HOME": str(tmp_path / "state")})
    assert settings.embedded
    assert settings.pgdata == tmp_path / "state" / "pgdata"
    assert settings.models_dir == tmp_path / "state" / "models"


def test_default_home_is_dot_storecast_in_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert get_settings({}).home == tmp_path / ".storecast"


def test_database_url_selects_an_external_server() -> None:
    url = "postgresql://alice:s3cret@db.example:6543/shop"
    settings = get_settings({"STORECAST_DATABASE_URL": url})
    assert not settings.embedded
    assert settings.conninfo == url
    assert settings.source == "STORECAST_DATABASE_URL"


def test_database_url_wins_over_pg_variables() -> None:
    settings = get_settings({"STORECAST_DATABASE_URL": "postgresql://a@h/db", "PGHOST": "other"})
    assert settings.conninfo == "postgresql://a@h/db"


def test_pghost_selects_the_libpq_environment() -> None:
    settings = get_settings({"PGHOST": "db.internal", "PGDATABASE": "shop"})
    assert not settings.embedded
    assert settings.conninfo == ""
    assert "PGHOST" in settings.source


def test_pgpassword_alone_does_not_leave_the_embedded_server() -> None:
    assert get_settings({"PGPASSWORD": "x", "PGUSER": "bob"}).embedded


def test_invalid_url_is_a_clear_error() -> None:
    with pytest.raises(SettingsError, match="STORECAST_DATABASE_URL"):
        get_settings({"STORECAST_DATABASE_URL": "postgresql://h/db?nonsense_option=1"})


def test_embedded_conninfo_explains_how_to_start_a_stopped_server(tmp_path: Path) -> None:
    settings = get_settings({"STORECAST_HOME": str(tmp_path)})
    with pytest.raises(SettingsError, match="storecast db start"):
        _ = settings.conninfo


def test_conninfo_fields_fall_back_to_pg_variables() -> None:
    fields = conninfo_fields("dbname=shop", {"PGHOST": "h", "PGPORT": "6000", "PGUSER": "u"})
    assert fields == {"dbname": "shop", "host": "h", "port": "6000", "user": "u"}


def test_url_for_a_unix_socket_puts_the_directory_in_the_query() -> None:
    url = conninfo_to_url("host='/tmp/x y' port=5432 user=postgres dbname=storecast", {})
    assert url == "postgresql://postgres@/storecast?host=/tmp/x%20y&port=5432"


def test_url_for_tcp_keeps_host_port_and_quotes_the_password() -> None:
    url = conninfo_to_url("host=db port=6543 user=alice password=p@ss dbname=shop", {})
    assert url == "postgresql://alice:p%40ss@db:6543/shop"


def test_dbt_environment_uses_storecast_prefixed_names() -> None:
    env = dbt_environment("host=/run/pg port=5433 user=postgres dbname=storecast", {})
    assert env == {
        "STORECAST_PGHOST": "/run/pg",
        "STORECAST_PGPORT": "5433",
        "STORECAST_PGUSER": "postgres",
        "STORECAST_PGDATABASE": "storecast",
    }
    # Exporting them must not switch storecast itself to an external server.
    assert get_settings(env).embedded


def test_latest_schema_version_comes_from_init_sql() -> None:
    from storecast.database.schema import init_sql, latest_version

    assert latest_version() >= 2
    assert f"values ({latest_version()}," in init_sql()


def test_a_killed_postmaster_left_a_zombie_is_not_running(tmp_path: Path) -> None:
    # A child that exits and is not reaped is a zombie, as a postmaster killed outright is
    # until its parent reaps it: it still answers a signal but serves no connection.
    child = os.fork()
    if child == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while process_state(child) != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        settings = get_settings({"STORECAST_HOME": str(tmp_path)})
        settings.pgdata.mkdir(parents=True)
        (settings.pgdata / "PG_VERSION").write_text("18\n")
        pidfile = settings.pgdata / "postmaster.pid"
        pidfile.write_text(
            f"{child}\n{settings.pgdata}\n0\n5432\n{settings.pgdata}\nlocalhost\n  5432001    98317\n"
        )
        status = embedded_status(settings)
        assert status.pid == child
        assert status.running is False
        # Line 7 names the shared memory the killed server's backends may still hold.
        assert status.shm_id == "98317"
        # A live process still counts as running.
        pidfile.write_text(f"{os.getpid()}\n{settings.pgdata}\n0\n5432\n{settings.pgdata}\n")
        assert embedded_status(settings).running is True
    finally:
        os.waitpid(child, 0)
