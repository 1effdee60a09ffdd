"""The service's background retrain: one daily run at a time, its progress kept as events.

A job runs :func:`storecast.scoring.pipeline.run_daily` in a thread on a connection of
its own. It takes the database-wide pipeline lock before it is accepted, so a second
request, or a CLI run already holding the lock, is refused at once rather than
queued. Every message of the run becomes an event that any number of listeners can
follow from the start (``events_after``), as server-sent events.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

from storecast.config import ProjectConfig
from storecast.db import Conn
from storecast.scoring.pipeline import STEPS, run_daily
from storecast.scoring.runs import PipelineBusyError, new_run_id, pipeline_lock
from storecast.settings import Settings
from storecast.training import registry


@dataclass(frozen=True)
class Event:
    """One server-sent event: ``progress``, ``result`` or ``error``, with its JSON data."""

    number: int
    kind: str
    data: dict[str, Any]

    def encode(self) -> bytes:
        """The event in the ``text/event-stream`` format."""
        return (
            f"id: {self.number}\nevent: {self.kind}\ndata: {json.dumps(self.data, default=str)}\n\n".encode()
        )


class BusyError(RuntimeError):
    """A run is already going: ``run_id`` is this service's job, or ``None`` for another process's."""

    def __init__(self, message: str, run_id: int | None) -> None:
        super().__init__(message)
        self.run_id = run_id


@dataclass
class Job:
    """A retrain run and everything it has said so far."""

    run_id: int
    as_of: date | None
    started_at: float = field(default_factory=time.time)
    events: list[Event] = field(default_factory=list)
    finished: bool = False
    step: str = STEPS[0]
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Add an event and wake the listeners."""
        with self._changed:
            self.events.append(Event(len(self.events), kind, data))
            if kind in ("result", "error"):
                self.finished = True
            self._changed.notify_all()

    def progress(self, message: str) -> None:
        """A progress event at the current step."""
        self.emit(
            "progress",
            {"step": self.step, "done": STEPS.index(self.step), "total": len(STEPS), "message": message},
        )

    def started(self, name: str) -> None:
        """The run moved on to step ``name``."""
        self.step = name
        self.progress(f"{name} started")

    def events_after(self, number: int, timeout: float) -> list[Event]:
        """Events numbered ``number`` or later, waiting up to ``timeout`` seconds for one."""
        with self._changed:
            if len(self.events) <= number and not self.finished:
                self._changed.wait(timeout)
            return self.events[number:]

    @property
    def status(self) -> str:
        """running, succeeded or failed."""
        if not self.finished:
            return "running"
        return "succeeded" if self.events[-1].kind == "result" else "failed"


def champions(conn: Conn) -> list[dict[str, Any]]:
    """Each champion with its selection metric on its test window and its baseline's."""
    return [
        {
            "model": c.model_name,
            "version": c.version,
            "estimator": c.estimator,
            "trained_as_of": c.trained_as_of,
            "metric": c.metric,
            "value": c.value,
            "baseline": c.baseline_value,
        }
        for c in registry.champion_scores(conn)
    ]


class Jobs:
    """The service's retrain jobs: at most one running, finished ones kept for ``GET /runs``."""

    def __init__(self, settings: Settings, config: Callable[[], ProjectConfig], keep: int = 20) -> None:
        self.settings = settings
        self.config = config
        self.keep = keep
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}
        self.running: Job | None = None

    def get(self, run_id: int) -> Job | None:
        """The job of ``run_id``, when this service ran it (and still remembers it)."""
        return self._jobs.get(run_id)

    def start(self, as_of: date | None, retrain: bool | Collection[str]) -> Job:
        """Take the pipeline lock and start the run in a thread; raises :class:`BusyError`
        when this service or another process is running one."""
        with self._lock:
            if self.running is not None and not self.running.finished:
                raise BusyError(f"run {self.running.run_id} is running", self.running.run_id)
            stack = ExitStack()
            conn = stack.enter_context(psycopg.connect(self.settings.conninfo, autocommit=True))
            try:
                stack.enter_context(pipeline_lock(conn, wait=False))
            except PipelineBusyError as exc:
                stack.close()
                raise BusyError(str(exc), None) from None
            job = Job(new_run_id(conn), as_of)
            self._jobs[job.run_id] = job
            for old in sorted(self._jobs)[: -self.keep]:
                del self._jobs[old]
            self.running = job
        thread = threading.Thread(
            target=self._run,
            args=(job, conn, stack, retrain),
            name=f"storecast-run-{job.run_id}",
            daemon=True,
        )
        thread.start()
        return job

    def _run(self, job: Job, conn: Conn, stack: ExitStack, retrain: bool | Collection[str]) -> None:
        with stack:
            try:
                job.progress(f"run {job.run_id} accepted")
                summary = run_daily(
                    conn,
                    self.settings,
                    self.config(),
                    as_of=job.as_of,
                    retrain=retrain,
                    progress=job.progress,
                    wait=False,
                    run_id=job.run_id,
                    on_step=job.started,
                )
                job.emit(
                    "result",
                    {
                        "run_id": summary.run_id,
                        "as_of": summary.as_of,
                        "trained": summary.trained,
                        "scored": summary.scored,
                        "counters": summary.counters,
                        "champions": champions(conn),
                        "seconds": round(time.time() - job.started_at, 1),
                    },
                )
            except Exception as exc:  # every failure ends the stream with an error event
                job.emit(
                    "error",
                    {"run_id": job.run_id, "step": job.step, "message": f"{type(exc).__name__}: {exc}"},
                )
