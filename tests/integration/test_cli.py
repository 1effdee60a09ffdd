"""The storecast CLI, run as a user would: real server, real psql, real exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storecast.cli import app
from storecast.database import server
from storecast.database.sample import SampleData
from storecast.database.schema import latest_version
from storecast.db import Conn
from storecast.settings import Settings, conninfo_to_url

runner = CliRunner()


def test_status_reports_the_embedded_server_truthfully(
    cli_env: dict[str, str], pg_settings: Settings, schema_ready: int
) -> None:
    result = runner.invoke(app, ["db", "status"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "server          embedded" in result.output
    assert "running (pid" in result.output
    assert "postgres        18." in result.output or "postgres        16." in result.output
    assert "iterative index scans" in result.output
    assert f"schema          version {latest_version()}" in result.output
    assert f"data directory  {pg_settings.pgdata}" in result.output


def test_status_reports_an_external_server_as_external(pg_settings: Settings) -> None:
    url = conninfo_to_url(pg_settings.conninfo)
    env = {"STORECAST_HOME": "/nonexistent", "STORECAST_DATABASE_URL": url}
    result = runner.invoke(app, ["db", "status"], env=env)
    assert result.exit_code == 0, result.output
    assert "server          external" in result.output
    assert "configured by   STORECAST_DATABASE_URL" in result.output
    assert "pgvector" in result.output


def test_status_of_an_unreachable_external_server_fails_clearly(tmp_path: Path) -> None:
    env = {"STORECAST_DATABASE_URL": f"postgresql://nobody@/nodb?host={tmp_path}&port=1"}
    result = runner.invoke(app, ["db", "status"], env=env)
    assert result.exit_code == 3
    assert "unreachable" in result.output


def test_status_of_a_server_never_started_says_so(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["db", "status"], env={"STORECAST_HOME": str(tmp_path), "STORECAST_DATABASE_URL": ""}
    )
    assert result.exit_code == 3
    assert "not created yet (storecast db start)" in result.output


def test_url_works_with_psql(cli_env: dict[str, str], tiny: SampleData) -> None:
    storecast = Path(sys.executable).parent / "storecast"
    env = {**os.environ, **cli_env}
    url = subprocess.run(
        [storecast, "db", "url"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    count = subprocess.run(
        [server.bundled_binary("psql"), url, "-Atc", "select count(*) > 0 from raw.orders"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert count == "t"


def test_init_is_idempotent_from_the_cli(cli_env: dict[str, str]) -> None:
    for _ in range(2):
        result = runner.invoke(app, ["db", "init"], env=cli_env)
        assert result.exit_code == 0, result.output
        assert f"schema version {latest_version()} applied" in result.output


def test_load_exit_codes_tell_loaded_partial_and_refused_apart(
    cli_env: dict[str, str], tmp_path: Path, conn: Conn, tiny: SampleData
) -> None:
    header = "customer_id,signup_date,region,segment\n"
    good = tmp_path / "good.csv"
    good.write_text(header + "70000001,2024-01-01,north,household\n")
    partial = tmp_path / "partial.csv"
    partial.write_text(header + "70000002,2024-01-01,north,household\n70000003,2024-02-30,north,household\n")
    loaded = runner.invoke(app, ["load", "customers", str(good)], env=cli_env)
    assert loaded.exit_code == 0, loaded.output
    assert "loaded: 1 of 1 rows into raw.customers" in loaded.output
    some = runner.invoke(app, ["load", "customers", str(partial)], env=cli_env)
    assert some.exit_code == 2, some.output
    assert "line 3: signup_date: expected date, got '2024-02-30'" in some.output
    assert "select * from raw.load_rejects where load_id =" in some.output
    refused = runner.invoke(
        app, ["load", "customers", str(partial), "--all-or-nothing", "--mode", "upsert"], env=cli_env
    )
    assert refused.exit_code == 1
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("id,when\n1,2\n")
    error = runner.invoke(app, ["load", "customers", str(bad_header)], env=cli_env)
    assert error.exit_code == 1
    assert "error:" in error.output
    assert "Traceback" not in error.output


def test_unknown_scale_is_a_clear_error(cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["sample", "--scale", "huge"], env=cli_env)
    assert result.exit_code == 1
    assert "unknown scale 'huge'; choose one of tiny, small, medium, large" in result.output


@pytest.mark.slow
def test_sample_prints_what_it_loaded(cli_env: dict[str, str], conn: Conn) -> None:
    result = runner.invoke(app, ["sample", "--scale", "tiny", "--seed", "7"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "raw.order_items" in result.output
    row = conn.execute("select source_file from raw.loads order by load_id desc limit 1").fetchone()
    assert row is not None
    assert "--scale tiny --seed 7" in str(row[0])
