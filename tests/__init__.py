"""storecast's test suite: ``unit`` needs no database, ``integration`` runs on a real one."""

from pathlib import Path

#: The repository root (README, docs), which an installed storecast does not carry.
REPOSITORY = Path(__file__).resolve().parent.parent
