"""The score tables, one family each: the table, its keys, and the champion models
whose predictions fill its columns (an explicit registry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from psycopg import sql

from storecast.db import Conn
from storecast.training.spec import ModelSpec


class ScoringError(RuntimeError):
    """Scoring cannot run: no champion, a changed model, mismatched features, a concurrent run."""


@dataclass(frozen=True)
class Output:
    """One model's prediction column in a family's score table."""

    model: str
    column: str
    version_column: str | None = None  # wide tables keep one version column per model
    reasons_column: str = "reasons"  # the prediction's top reasons (storecast.training.explain)

    def version_sql(self, alias: str = "s") -> tuple[sql.Composable, sql.Composable]:
        """The score table's column holding this model's version, and the condition that
        picks this model's rows (of table alias ``alias``)."""
        if self.version_column:
            return sql.Identifier(self.version_column), sql.SQL("true")
        return sql.Identifier("model_version"), sql.SQL("{}.model_name = {}").format(
            sql.Identifier(alias), sql.Literal(self.model)
        )


@dataclass(frozen=True)
class Family:
    """A score table and the champion models that fill it."""

    name: str
    table: str
    keys: list[str]
    outputs: list[Output]
    rows: Callable[[Conn, ModelSpec, date], list[date]] = field(
        default=lambda conn, spec, as_of: [as_of], repr=False
    )
    #: Forecast tables also hold the target date and an interval per level (e.g. 80 -> lower_80, upper_80).
    interval_levels: tuple[int, ...] = ()

    def columns(self) -> list[str]:
        """The columns of the score table, as scoring writes them: the one definition that
        ``database/init.sql`` and the ``stg_scores__*`` views are tested against."""
        columns = [*self.keys, "as_of_date"]
        if self.interval_levels:
            columns.append("target_date")
        for output in self.outputs:
            columns.append(output.column)
            columns += [output.version_column] if output.version_column else ["model_name", "model_version"]
        for level in self.interval_levels:
            columns += [f"lower_{level}", f"upper_{level}"]
        columns += [output.reasons_column for output in self.outputs]
        return [*dict.fromkeys([*columns, "run_id", "scored_at"])]


def _launch_dates(conn: Conn, spec: ModelSpec, as_of: date) -> list[date]:
    """Items still within their sell-through horizon on ``as_of``, or planned for later."""
    rows = conn.execute(
        sql.SQL("select distinct {t} from {rel} where {t} > %s").format(
            t=sql.Identifier(spec.time_column), rel=sql.Identifier(*spec.relation.split(".", 1))
        ),
        [as_of - timedelta(days=spec.horizon_days)],
    ).fetchall()
    return [r[0] for r in rows]  # type: ignore[misc]


#: The score tables, by family (explicit registry, one entry per table).
FAMILIES: dict[str, Family] = {
    "customer": Family(
        "customer",
        "scores.customer",
        ["customer_id"],
        [
            Output("purchase_30d", "purchase_probability", "purchase_model_version", "purchase_reasons"),
            Output("churn_90d", "churn_probability", "churn_model_version", "churn_reasons"),
            Output("clv_365d", "expected_spend", "clv_model_version", "clv_reasons"),
        ],
    ),
    "offer_redemption": Family(
        "offer_redemption",
        "scores.offer_redemption",
        ["customer_id", "offer_id"],
        [Output("offer_redemption_7d", "probability")],
    ),
    "sell_through": Family(
        "sell_through",
        "scores.sell_through",
        ["product_id"],
        [Output("sell_through", "probability")],
        _launch_dates,
    ),
    "demand": Family(
        "demand",
        "scores.demand_forecast",
        ["product_id", "store_id", "horizon"],
        [Output("demand", "units")],
        interval_levels=(80, 95),
    ),
}
