"""The shared trained state: the tiny sample, features built, every shipped model trained.

Training every model is the slowest setup of the suite, so the modules in this folder
share one trained state. They run one after another on one xdist worker (``make test``
runs two: tests/conftest.py keeps this folder together; in one process they run after
every other module), those marked ``changes_trained_state`` after those that only read
it, so no module changes the data under another
(:func:`tests.integration.conftest.pytest_collection_modifyitems`).
"""

from __future__ import annotations

import psycopg
import pytest

from storecast.build import build
from storecast.database.sample import SampleData
from storecast.database.sample.load import load_sample
from storecast.settings import Settings
from storecast.training.spec import model_specs
from storecast.training.train import TrainResult, train_model


@pytest.fixture(scope="session")
def trained(pg_settings: Settings, tiny: SampleData) -> dict[str, TrainResult]:
    """Tiny sample, features built, every shipped model trained once into an empty registry."""
    with psycopg.connect(pg_settings.conninfo, autocommit=True) as conn:
        load_sample(conn, tiny, source="tests: trained")
        conn.execute("truncate ml.model_versions cascade")
        build(pg_settings, full_refresh=True)
        return {name: train_model(conn, spec, pg_settings.models_dir) for name, spec in model_specs().items()}
