"""How ``make test`` spreads the suite over xdist workers (``pytest -n 2``)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

#: Modules that share the trained state (tests/integration/trained/conftest.py).
TRAINED_STATE = PurePosixPath("tests/integration/trained")


def scope_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its module, or the whole trained-state folder.

    A module's tests stay on one worker, so its module fixtures are built once, and
    the trained-state modules all run on one worker, in order, so that state is trained
    once and changed only after the modules that read it.
    """
    module = PurePosixPath(nodeid.split("::", 1)[0])
    return str(TRAINED_STATE) if TRAINED_STATE in module.parents else str(module)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's scope scheduler with :func:`scope_of` as the scope (largest scope first),
    whatever ``--dist`` says: the trained state must stay on one worker.

    Not ``--dist loadgroup`` with marks added at collection: with pytest 9.2 its groups
    are silently ignored (pytest-xdist issue 1386).
    """
    from xdist.scheduler import LoadScopeScheduling

    class ByScope(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no types
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return ByScope(config, log)
