"""The pipeline run log, ``ml.pipeline_runs``: one row per step, with status, timing and counters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from psycopg.types.json import Jsonb

from storecast.db import Conn, scalar

#: The two keys of the database-wide pipeline lock (``pg_advisory_lock(int, int)``): a
#: constant of storecast's and the lock's number, so ``pg_locks`` finds its holder.
LOCK_KEYS = (50_712_218, 1)


class PipelineBusyError(RuntimeError):
    """Another storecast command holds the pipeline lock and the caller would not wait."""


def lock_holder(conn: Conn) -> str:
    """Who holds the pipeline lock: the run and step it is at, its process, since when."""
    row = conn.execute(
        """
        select a.pid, a.application_name, a.backend_start,
               (select format('run %%s (step %%s, since %%s)', r.run_id, r.step, r.started_at::timestamp(0))
                from ml.pipeline_runs r
                where r.backend_pid = a.pid and r.backend_started_at = a.backend_start and r.status = 'running'
                order by r.started_at desc limit 1)
        from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.locktype = 'advisory' and l.classid = %s and l.objid = %s and l.objsubid = 2 and l.granted
        """,
        list(LOCK_KEYS),
    ).fetchone()
    if row is None:
        return "another storecast command (it has just finished)"
    pid, application, since, run = row
    what = str(run) if run else f"a storecast command ({application or 'no application name'})"
    return f"{what}, server process {pid} connected since {since:%Y-%m-%d %H:%M:%S}"


@contextmanager
def pipeline_lock(conn: Conn, wait: bool = True, say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the database-wide pipeline lock for the block: one build, train, score or
    run at a time per database. Without ``wait`` a held lock raises :class:`PipelineBusyError`
    naming its holder; with it the caller waits (saying for whom). Re-entrant on one
    connection (the daily run scores under its own lock)."""
    got = conn.execute("select pg_try_advisory_lock(%s, %s)", list(LOCK_KEYS)).fetchone()
    if not got or not got[0]:
        holder = lock_holder(conn)
        if not wait:
            raise PipelineBusyError(
                f"{holder} is running on this database; wait for it, or run again without --no-wait"
            )
        if say is not None:
            say(f"waiting for {holder} to finish")
        conn.execute("select pg_advisory_lock(%s, %s)", list(LOCK_KEYS))
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("select pg_advisory_unlock(%s, %s)", list(LOCK_KEYS))


def new_run_id(conn: Conn) -> int:
    """A fresh run id."""
    run_id: int = scalar(conn, "select nextval('ml.run_ids')")
    return run_id


@contextmanager
def step(conn: Conn, run_id: int, as_of: date | None, name: str) -> Iterator[dict[str, Any]]:
    """Record a step: ``running`` now, then ``succeeded`` with the counters the block filled in,
    or ``failed`` with the error (which is re-raised). Each write commits on its own, so the log
    survives the step's own rollback."""
    conn.execute(
        """
        insert into ml.pipeline_runs (run_id, as_of_date, step, status, backend_pid, backend_started_at)
        select %s, %s, %s, 'running', pid, backend_start from pg_stat_activity where pid = pg_backend_pid()
        """,
        [run_id, as_of, name],
    )
    counters: dict[str, Any] = {}
    try:
        yield counters
    except BaseException as exc:
        if conn.closed:  # the session died: a later command marks the step abandoned
            raise
        conn.execute(
            "update ml.pipeline_runs set status = 'failed', finished_at = now(), message = %s, counters = %s "
            "where run_id = %s and step = %s",
            [f"{type(exc).__name__}: {exc}", Jsonb(counters), run_id, name],
        )
        raise
    conn.execute(
        "update ml.pipeline_runs set status = 'succeeded', finished_at = now(), rows = %s, counters = %s, message = %s "
        "where run_id = %s and step = %s",
        [counters.pop("rows", None), Jsonb(counters), counters.pop("message", None), run_id, name],
    )


def abandon_dead_steps(conn: Conn) -> int:
    """Mark steps still ``running`` whose session is gone as ``abandoned``; returns how many.

    A step whose process was killed (or whose server went down) never wrote its own
    outcome; what it was writing was rolled back with its transaction.
    """
    cur = conn.execute(
        """
        update ml.pipeline_runs r set status = 'abandoned', finished_at = now(),
               message = 'its process died before the step finished (found ' || now()::text || ')'
        where status = 'running'
          and not exists (
              select 1 from pg_stat_activity a
              where a.pid = r.backend_pid and a.backend_start = r.backend_started_at
          )
        """
    )
    return cur.rowcount


def recent_runs(conn: Conn, last: int = 5) -> list[tuple[object, ...]]:
    """Steps of the ``last`` most recent runs, oldest step first within each run."""
    return conn.execute(
        """
        select run_id, as_of_date, step, status, started_at, finished_at - started_at as duration, rows, counters, message
        from ml.pipeline_runs
        where run_id in (select distinct run_id from ml.pipeline_runs order by run_id desc limit %s)
        order by run_id desc, started_at
        """,
        [last],
    ).fetchall()
