"""A model spec for unit tests: the fields a test does not care about filled in once."""

from __future__ import annotations

from typing import Any

from storecast.training.spec import ModelSpec


def spec_for(task: str, numeric: list[str], candidates: list[str], **fields: Any) -> ModelSpec:
    """A valid spec of ``task`` over ``numeric`` features; ``fields`` override the rest."""
    keys = ["series_id", "as_of_date", "horizon"] if task == "forecast" else ["customer_id", "as_of_date"]
    defaults: dict[str, Any] = {
        "name": "test_model",
        "description": "a model built by a unit test",
        "task": task,
        "relation": "features.test_rows",
        "keys": keys,
        "label": "outcome",
        "horizon_days": 180,
        "features": {"numeric": numeric},
        "candidates": candidates,
        "selection_metric": {"binary": "roc_auc", "regression": "rmse", "forecast": "wape_bias"}[task],
        "baseline": {"binary": "recency_rule", "regression": "last_year_spend", "forecast": "seasonal_naive"}[
            task
        ],
    }
    return ModelSpec.model_validate({**defaults, **fields})
