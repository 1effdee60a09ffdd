"""Faults: `storecast` killed with SIGKILL during load, build, train and score, and the
server killed during a run. After each: the data committed before is intact (row
counts and checksums), no staging relation or lock is left behind, the run log and
the load log say what happened, and the next command succeeds.

The tests run in order on a server of their own (the postmaster is killed at the end),
with the tiny sample trained (shared with other modules) and run once through the daily job.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from storecast.database import server
from storecast.scoring.runs import LOCK_KEYS
from storecast.settings import Settings, embedded_status, get_settings
from storecast.training.train import TrainResult

#: Schemas whose committed rows no killed command may change.
GUARDED = ("raw", "features", "scores", "marts")
#: Bookkeeping that a killed command legitimately writes to (its own log rows).
LOGS = ("raw.loads", "raw.load_rejects", "ml.pipeline_runs")
LEFTOVERS = r"(__dbt_tmp|__dbt_backup|^_staging_|^_load_)"
#: Columns that say which run wrote a row and when: a family scored before the kill is
#: replaced by the same scores from another run.
VOLATILE = ("run_id", "scored_at")

pytestmark = pytest.mark.slow


@dataclass
class Faults:
    """The server, the environment the CLI runs with, and a folder for files."""

    settings: Settings
    env: dict[str, str]
    folder: Path

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.settings.conninfo, autocommit=True)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "storecast.cli", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def ok(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "storecast.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, (
            f"storecast {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
        return done.stdout

    def kill_when(self, process: subprocess.Popen[str], condition: str, settle: float = 0.0) -> None:
        """SIGKILL ``process`` once ``condition`` (SQL returning one boolean) holds."""
        deadline = time.monotonic() + 300
        with self.connect() as conn:
            while True:
                row = conn.execute(condition).fetchone()
                if row and row[0]:
                    break
                if process.poll() is not None:
                    output = process.stdout.read() if process.stdout else ""
                    pytest.fail(
                        f"the command ended (exit {process.returncode}) before {condition}:\n{output}"
                    )
                assert time.monotonic() < deadline, f"timed out waiting for {condition}"
                time.sleep(0.05)
        time.sleep(settle)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """The guarded tables as they stand (:func:`snapshot`)."""
        with self.connect() as conn:
            return snapshot(conn)

    def assert_as(self, before: dict[str, tuple[int, int]]) -> None:
        """Nothing a killed command did is left: the guarded tables as ``before``, no leftover."""
        with self.connect() as conn:
            assert snapshot(conn) == before
            assert leftovers(conn) == []

    def quiet(self) -> None:
        """Wait until the killed command's server sessions have ended (a query it left
        running finishes or fails first), so what remains is what it committed."""
        deadline = time.monotonic() + 300
        with self.connect() as conn:
            while conn.execute(
                "select count(*) from pg_stat_activity where backend_type = 'client backend' "
                "and pid <> pg_backend_pid() and datname = current_database()"
            ).fetchone() != (0,):
                assert time.monotonic() < deadline, "sessions of the killed command did not end"
                time.sleep(0.1)


def snapshot(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, tuple[int, int]]:
    """Row count and a checksum of every table in the guarded schemas and the registry
    (leaving out which run wrote a row and when)."""
    tables = [
        f"{schema}.{name}"
        for schema, name in conn.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema = any(%s) and table_type = 'BASE TABLE'",
            [list(GUARDED)],
        ).fetchall()
    ]
    out = {}
    for table in [*tables, "ml.model_versions"]:
        if table in LOGS:
            continue
        schema, name = table.split(".")
        columns = [
            f't."{column}"'
            for (column,) in conn.execute(
                "select column_name from information_schema.columns where table_schema = %s "
                "and table_name = %s and not column_name = any(%s) order by ordinal_position",
                [schema, name, list(VOLATILE)],
            ).fetchall()
        ]
        # A row's text form, hashed: several times faster than through jsonb on the
        # feature tables' million rows, and as sensitive to any changed value.
        row = conn.execute(
            f"select count(*), coalesce(sum(hashtext(row({', '.join(columns)})::text)::bigint), 0) from {table} t"
        ).fetchone()
        assert row is not None
        out[table] = (int(str(row[0])), int(str(row[1])))
    return out


def leftovers(conn: psycopg.Connection[tuple[object, ...]]) -> list[object]:
    """Staging relations and advisory locks left behind."""
    relations = conn.execute(
        "select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where c.relname ~ %s and n.nspname not like 'pg_temp%%'",
        [LEFTOVERS],
    ).fetchall()
    locks = conn.execute("select pid, objid from pg_locks where locktype = 'advisory'").fetchall()
    return [*relations, *locks]


@pytest.fixture(scope="module")
def faults(
    pg_settings: Settings,
    trained: dict[str, TrainResult],
    server_home: Callable[[str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Faults]:
    """A server of its own on a copy of the session server's trained tiny sample (its data
    folder copied while it is stopped: training every model again would take a minute
    and a half), scored once."""
    home = server_home("faults_home")
    settings = get_settings({"STORECAST_HOME": str(home)})
    server.stop(pg_settings)
    try:
        # cp -a keeps the owner: the server runs as a user of its own, not as root.
        subprocess.run(["cp", "-a", str(pg_settings.pgdata), str(settings.pgdata)], check=True)
    finally:
        server.start(pg_settings)
    server.start(settings)
    env = {
        **os.environ,
        "STORECAST_HOME": str(home),
        "STORECAST_DATABASE_URL": "",
        "PGHOST": "",
        "STORECAST_CONFIG": "",
        "COLUMNS": "250",
    }
    faults = Faults(settings, env, tmp_path_factory.mktemp("faults_files"))
    try:
        # Scores to keep: the copy has features and champions, so the daily job's other
        # steps would only repeat the build (the last test runs it whole).
        faults.ok("score")
        yield faults
    finally:
        server.stop(settings)


def test_a_killed_load_loads_nothing_and_is_marked_abandoned(faults: Faults) -> None:
    big = faults.folder / "customers.csv"
    with big.open("w") as out:
        out.write("customer_id,signup_date,region,segment\n")
        for i in range(600_000):
            out.write(f"{10_000_000 + i},2024-01-01,north,household\n")
    before = faults.snapshot()
    load = faults.start("load", "customers", str(big))
    faults.kill_when(
        load,
        f"select exists (select 1 from raw.loads where source_file = '{big}' and status = 'running')",
        0.5,
    )
    faults.quiet()
    faults.assert_as(before)
    with faults.connect() as conn:
        row = conn.execute("select status from raw.loads where source_file = %s", [str(big)]).fetchone()
        assert row == ("running",)  # until a later load looks
    small = faults.folder / "one.csv"
    small.write_text("customer_id,signup_date,region,segment\n20000000,2024-01-01,north,household\n")
    assert "loaded: 1 of 1" in faults.ok("load", "customers", str(small))
    with faults.connect() as conn:
        status, message = conn.execute(  # type: ignore[misc]
            "select status, message from raw.loads where source_file = %s", [str(big)]
        ).fetchone()
        assert status == "abandoned"
        assert "nothing of it was committed" in str(message)
        conn.execute("delete from raw.customers where customer_id = 20000000")


def test_a_killed_build_leaves_the_features_as_they_were(faults: Faults) -> None:
    before = faults.snapshot()
    build = faults.start("build")
    faults.kill_when(
        build,
        'select exists (select 1 from pg_stat_activity where query like \'%"app": "dbt"%\' '
        "and query like '%features.%' and state = 'active')",
    )
    faults.quiet()
    faults.assert_as(before)


def test_a_killed_training_registers_nothing(faults: Faults) -> None:
    before = faults.snapshot()
    train = faults.start("train", "demand", "--retrain")
    # The pipeline lock is taken just before training starts; let it read and start fitting.
    faults.kill_when(
        train,
        "select exists (select 1 from pg_locks where locktype = 'advisory' "
        f"and classid = {LOCK_KEYS[0]} and objid = {LOCK_KEYS[1]})",
        2.0,
    )
    faults.quiet()
    faults.assert_as(before)


def test_a_killed_scoring_keeps_the_scores_and_the_log_says_so(faults: Faults) -> None:
    before = faults.snapshot()
    # Tiny scores in well under a second: hold the demand table's write lock so that the
    # command is sure to be inside its last family (others already swapped in) when killed.
    blocker = faults.connect()
    blocker.autocommit = False
    blocker.execute(
        "select pg_advisory_xact_lock(hashtext('storecast.score.' || %s))", ["scores.demand_forecast"]
    )
    score = faults.start("score")
    faults.kill_when(
        score,
        "select exists (select 1 from ml.pipeline_runs where step = 'score:demand' and status = 'running')",
        0.5,
    )
    blocker.rollback()
    blocker.close()
    faults.quiet()
    faults.assert_as(before)
    shown = faults.ok("runs", "--last", "1")
    assert "abandoned" in shown
    with faults.connect() as conn:
        assert conn.execute("select count(*) from ml.pipeline_runs where status = 'running'").fetchone() == (
            0,
        )


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux: /proc/<pid>/status)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:  # the process ended while we looked
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def _kill_server_outright(postmaster: int) -> None:
    """SIGKILL the postmaster and then every backend, as an out-of-memory kill or a power cut
    would, so that no session of the run outlives the server: with the postmaster alone
    killed, a backend in the middle of a query carries on until the query ends."""
    os.kill(postmaster, signal.SIGSTOP)  # no new backend from here on
    backends = _children(postmaster)
    os.kill(postmaster, signal.SIGKILL)
    for pid in backends:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_run_whose_server_is_killed_recovers_on_the_next_run(faults: Faults) -> None:
    before = faults.snapshot()
    run = faults.start("run")
    with faults.connect() as conn:
        deadline = time.monotonic() + 300
        while conn.execute(
            "select not exists (select 1 from ml.pipeline_runs where step = 'build:features' and status = 'running')"
        ).fetchone() == (True,):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    status = embedded_status(faults.settings)
    assert status.pid is not None
    _kill_server_outright(status.pid)
    assert run.wait(300) != 0
    # The next command starts the server again; the run's data is as it was.
    faults.ok("db", "start")
    faults.assert_as(before)
    faults.ok("run")
    shown = faults.ok("runs", "--last", "2")
    # Whole, so that a failure shows which step of which run held what status.
    assert "abandoned" in shown, f"no abandoned step in `storecast runs --last 2`:\n{shown}"
    with faults.connect() as conn:
        assert conn.execute("select count(*) from ml.pipeline_runs where status = 'running'").fetchone() == (
            0,
        )
        assert leftovers(conn) == []
