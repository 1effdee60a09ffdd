"""storecast installed from its wheel, away from the checkout: one import namespace, and the
dbt project, specs and schema travel with it, so `storecast build` works from the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import psycopg
import pytest

from storecast.db import scalar
from storecast.settings import Settings
from tests import REPOSITORY
from tests.integration.shell import fresh_database


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """storecast's wheel, built from the checkout as pip would, and what the build printed."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(out),
            str(REPOSITORY),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (found,) = out.glob("storecast-*.whl")
    return found, done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(built: tuple[Path, str]) -> Path:
    return built[0]


def test_the_build_warns_of_nothing(built: tuple[Path, str]) -> None:
    # The dbt project's folders hold no Python; listed wrongly, setuptools prints forty
    # lines per folder on every install (the README's first command included).
    assert "Warning" not in built[1], built[1]


@pytest.fixture(scope="module")
def site(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel unpacked as an installer would put it in site-packages."""
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def _python(
    site: Path, cwd: Path, code: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with the unpacked wheel first on the path, outside the checkout."""
    environ = {**os.environ, **(env or {}), "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=600
    )


def test_the_wheel_installs_one_top_level_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/")[0] for name in archive.namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"storecast"}


def test_the_wheel_carries_the_dbt_project_specs_and_schema(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    needed = {"storecast/dbt/dbt_project.yml", "storecast/dbt/profiles.yml"}
    for folder, installed in (
        ("models_sql", "storecast/dbt/models_sql"),
        ("dbt_project", "storecast/dbt/dbt_project"),
        ("training/specs", "storecast/training/specs"),
        ("database", "storecast/database"),
    ):
        for path in (REPOSITORY / folder).rglob("*"):
            if path.suffix in {".sql", ".yml", ".py"}:
                needed.add(f"{installed}/{path.relative_to(REPOSITORY / folder).as_posix()}")
    assert sorted(needed - names) == []


def test_no_other_top_level_module_is_importable(site: Path, tmp_path: Path) -> None:
    for name in ("database", "training", "scoring"):
        result = _python(site, tmp_path, f"import {name}")
        assert result.returncode != 0
        assert f"No module named '{name}'" in result.stderr
    result = _python(site, tmp_path, "import storecast.training.train as t; print(t.__file__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(site))


def test_the_installed_wheel_runs_its_schema_and_dbt_project(
    site: Path, tmp_path: Path, pg_settings: Settings
) -> None:
    # dbt parses the whole packaged project for any selection; the staging views then run its
    # SQL against the schema from the packaged init.sql. (A full `sample` + `run` from a wheel
    # outside the checkout is in the closing note: it takes minutes, not seconds.)
    home = tmp_path / "home"
    conninfo = fresh_database(pg_settings, "installed_wheel")
    env = {"STORECAST_HOME": str(home), "STORECAST_DATABASE_URL": conninfo, "PGHOST": ""}
    cli = "from storecast.cli import app; app()"
    for args in (["db", "init"], ["build", "--select", "staging"]):
        result = _python(site, tmp_path, cli, *args, env=env)
        assert result.returncode == 0, f"storecast {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    with psycopg.connect(conninfo) as conn:
        views = scalar(conn, "select count(*) from information_schema.views where table_schema = 'staging'")
    assert views == len(list((REPOSITORY / "models_sql" / "staging").glob("stg_*.sql")))
    # dbt wrote its target into the state folder, not into the installed package.
    assert (home / "dbt" / "target" / "manifest.json").exists()
    assert not (site / "storecast" / "dbt" / "target").exists()
