"""Customer models on a one-cohort customer base, beside the peers a retailer would try first.

The sample retailer is reshaped like the real one-cohort online base the team was judged
on (``--shape one-cohort --shape one-product --shape no-offers``: every customer acquired
in one quarter, one product, no offers), the label horizons are set to 181 days with
settings only, and everything is measured as of a date D whose 181-day outcome is known,
by default a year after the first order (12 months of history, as the judged base had):
storecast trains purchase (``purchase_30d``) and spend (``clv_365d``) as of D, reading
only labels matured by D, scores D through ONNX, and is compared with what the customers
did in the 181 days from D. The peers see the same history (orders before D):

* the recency rule: the purchase rate of training customers of similar recency;
* last-period spend: spend in the 181 days before D, carried forward;
* BG/NBD + Gamma-Gamma fitted by maximum likelihood on the orders before D
  (``storecast.training.btyd``): probability of a purchase in 181 days and expected spend.

    python -m benchmarks.customer_shapes [--scale medium] [--seed 42] [--history-days 365] [--as-of D]
        [--shape fading|drifting]

Prints purchase AUC, and for spend the normalised Gini, Spearman correlation, MAE, RMSE
and total predicted against total actual spend; then storecast's AUC, Gini and MAE minus
each baseline's with a 95 % interval from resampling the customers, so that a tie reads
as one.

It also prints **hindsight**: models fitted on D's own outcomes, out of fold (5-fold
cross-validation over the customers), on BG/NBD's (and Gamma-Gamma's) prediction with
every customer feature of the spec beside it. No model trained on matured labels can
see D's outcomes, so hindsight shows how much the customers' history holds beyond the
probabilistic model: when it barely beats BG/NBD, a tie with BG/NBD is all there is to get.
On a base too small for that many columns (``--scale tiny``) it is left out, and says so.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from datetime import date

import numpy as np
import pandas as pd
import psycopg
from scipy.special import logit
from scipy.stats import spearmanr
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, TweedieRegressor
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from typer.testing import CliRunner

from benchmarks.throwaway import throwaway_server
from storecast.build import build
from storecast.cli import app
from storecast.config import load_config
from storecast.scoring.score import score
from storecast.training import metrics as m
from storecast.training import registry
from storecast.training.btyd import BGNBD, GammaGamma
from storecast.training.spec import model_specs
from storecast.training.train import train_model

HORIZON = 181
SETTINGS = [
    f"{name}={HORIZON}" for name in ("purchase_horizon_days", "churn_horizon_days", "clv_horizon_days")
]
SHAPES = ["one-cohort", "one-product", "no-offers"]
#: History before D by default: the judged base had 12 months of orders before its as-of date.
HISTORY_DAYS = 365

F64 = np.ndarray


def _rows(
    conn: psycopg.Connection[tuple[object, ...]], query: str, params: list[object]
) -> list[tuple[object, ...]]:
    return conn.execute(query, params).fetchall()


def _truth(conn: psycopg.Connection[tuple[object, ...]], as_of: date) -> dict[str, F64]:
    """Customers in the population at D with their outcome over the horizon and their history."""
    rows = _rows(
        conn,
        """
        select customer_id, purchased_in_horizon::int, spend_in_horizon, recency_days
        from features.customer_features where as_of_date = %s and spend_in_horizon is not null
        order by customer_id
        """,
        [as_of],
    )
    ids, bought, spend, recency = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    return {"customer_id": ids, "bought": bought, "spend": spend, "recency": recency}


def _history(conn: psycopg.Connection[tuple[object, ...]], as_of: date, ids: F64) -> dict[str, F64]:
    """Per customer, from the orders before D: BG/NBD's (x, t_x, T), mean repeat spend, last-period spend.

    As a user of the textbook models nets returns (lines of negative quantity): the
    transactions are the days with a sale, and a customer's repeat spend is scaled by the
    share of their spend they kept (1 without returns); last-period spend is net."""
    rows = _rows(
        conn,
        """
        with days as (
            select o.customer_id, o.order_date,
                   coalesce(sum(i.net_amount) filter (where not i.is_return), 0) as value,
                   sum(i.net_amount) as net,
                   bool_or(not i.is_return) as bought
            from staging.stg_raw__orders o join staging.stg_raw__order_items i using (order_id)
            where o.customer_id is not null and o.order_date < %(d)s
            group by 1, 2
        ),
        ranked as (
            select *, min(order_date) filter (where bought) over (partition by customer_id) as first_day
            from days
        )
        select customer_id,
               count(*) filter (where bought) - 1 as x,
               max(order_date) filter (where bought) - min(first_day) as t_x,
               %(d)s::date - min(first_day) as age,
               coalesce(avg(value) filter (where bought and order_date > first_day), 0)
                   * coalesce(greatest(sum(net), 0) / nullif(sum(value), 0), 1) as repeat_value,
               greatest(coalesce(sum(net) filter (where order_date >= %(d)s::date - %(h)s), 0), 0) as last_period
        from ranked group by customer_id having bool_or(bought) order by customer_id
        """,
        {"d": as_of, "h": HORIZON},  # type: ignore[arg-type]
    )
    table = {int(str(r[0])): r[1:] for r in rows}
    columns = np.array([table[int(i)] for i in ids], dtype=float)
    return {
        "x": columns[:, 0],
        "t_x": columns[:, 1],
        "age": columns[:, 2],
        "repeat_value": columns[:, 3],
        "last_period": columns[:, 4],
    }


def _recency_rule(conn: psycopg.Connection[tuple[object, ...]], as_of: date, recency: F64) -> F64:
    """Purchase rate by recency decile among the training rows matured by D."""
    rows = _rows(
        conn,
        "select recency_days, purchased_in_horizon::int from features.customer_features "
        "where as_of_date + %s <= %s and purchased_in_horizon is not null",
        [HORIZON, as_of],
    )
    train = np.array(rows, dtype=float)
    edges = np.unique(np.quantile(train[:, 0], np.linspace(0, 1, 11)[1:-1]))
    bins = np.searchsorted(edges, train[:, 0])
    rates = np.array(
        [
            train[bins == b, 1].mean() if (bins == b).any() else train[:, 1].mean()
            for b in range(len(edges) + 1)
        ]
    )
    return rates[np.searchsorted(edges, recency)]


def _customer_features(
    conn: psycopg.Connection[tuple[object, ...]], as_of: date, ids: F64, columns: list[str]
) -> pd.DataFrame:
    """The spec's features of each customer at D, in the order of ``ids``."""
    rows = _rows(
        conn,
        f"select customer_id, {', '.join(columns)} from features.customer_features where as_of_date = %s",
        [as_of],
    )
    frame = pd.DataFrame(rows, columns=["customer_id", *columns]).set_index("customer_id")
    return frame.loc[ids.astype(int)].reset_index(drop=True)


#: Folds of the hindsight models' cross-validation.
HINDSIGHT_FOLDS = 5
#: Fewest customers per feature column a hindsight model is fitted on in each fold: on a
#: few dozen (``--scale tiny``) the spend model's log link predicted 1e16 in total.
MIN_HINDSIGHT_ROWS_PER_FEATURE = 10


def _hindsight_customers(features: pd.DataFrame) -> int:
    """Customers the hindsight models need for these feature columns."""
    per_fold = MIN_HINDSIGHT_ROWS_PER_FEATURE * features.shape[1]
    return int(np.ceil(per_fold * HINDSIGHT_FOLDS / (HINDSIGHT_FOLDS - 1)))


def _hindsight(features: pd.DataFrame, numeric: list[str], target: F64, binary: bool) -> F64:
    """Out-of-fold predictions of a model fitted on D's own outcomes."""
    categorical = [c for c in features.columns if c not in numeric]
    # A shape can leave a feature NULL for everyone (one product: no price tiers).
    numeric = [c for c in numeric if features[c].notna().any()]
    # Clipped at 5 standard deviations: a log link fitted on four folds otherwise turns the
    # fifth's few extreme customers into predictions of thousands.
    clip = FunctionTransformer(np.clip, kw_args={"a_min": -5.0, "a_max": 5.0})
    prepare = make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), clip), numeric),
        (OneHotEncoder(handle_unknown="ignore"), categorical),
    )
    frame = features[[*numeric, *categorical]].astype(dict.fromkeys(numeric, float))
    if binary:
        model = make_pipeline(prepare, LogisticRegression(max_iter=3000))
        folds = StratifiedKFold(HINDSIGHT_FOLDS, shuffle=True, random_state=0)
        return np.asarray(cross_val_predict(model, frame, target, cv=folds, method="predict_proba")[:, 1])
    model = make_pipeline(prepare, TweedieRegressor(power=1.5, link="log", alpha=1e-4, max_iter=3000))
    return np.asarray(
        cross_val_predict(model, frame, target, cv=KFold(HINDSIGHT_FOLDS, shuffle=True, random_state=0))
    )


def _spend_row(name: str, actual: F64, predicted: F64) -> str:
    rho = float(spearmanr(actual, predicted).statistic)
    return (
        f"| {name:<30} | {m.normalized_gini(actual, predicted):6.3f} | {rho:8.3f} | "
        f"{np.abs(predicted - actual).mean():8.2f} | {np.sqrt(np.mean((predicted - actual) ** 2)):8.2f} | "
        f"{predicted.sum():>12,.0f} | {actual.sum():>12,.0f} |"
    )


#: Bootstrap resamples of the customers for the paired differences.
DRAWS = 1000


def _paired(
    actual: F64, ours: F64, theirs: F64, metric: Callable[[F64, F64], float], draws: int = DRAWS
) -> str:
    """storecast's metric minus a baseline's, with a 95 % interval from resampling the
    customers (the same resample for both): a difference inside it is a tie."""
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(actual), size=(draws, len(actual)))
    spread = [metric(actual[r], ours[r]) - metric(actual[r], theirs[r]) for r in rows]
    low, high = np.percentile(spread, [2.5, 97.5])
    return f"{metric(actual, ours) - metric(actual, theirs):+.4f} [{low:+.4f}, {high:+.4f}]"


def _mae(actual: F64, predicted: F64) -> float:
    return float(np.abs(predicted - actual).mean())


def _as_of(conn: psycopg.Connection[tuple[object, ...]], before: date | None, history_days: int) -> date:
    """D: the latest as-of date on or before ``before`` when given, else the first at least
    ``history_days`` after the first order (the latest with 0, or when none is that late);
    always one whose HORIZON-day outcome is known."""
    known = _rows(
        conn,
        "select as_of_date, as_of_date >= (select min(order_date) from staging.stg_raw__orders) + %s "
        "from features.as_of_dates where as_of_date + %s <= "
        "(select max(data_observed_until) from features.as_of_dates) and not is_scoring_date "
        "and as_of_date <= coalesce(%s, as_of_date) order by as_of_date",
        [history_days, HORIZON, before],
    )
    if not known:
        on_or_before = f" on or before {before}" if before else ""
        raise SystemExit(f"no as-of date{on_or_before} has a known {HORIZON}-day outcome")
    late_enough = [d for d, enough in known if enough]
    chosen = known[-1][0] if before or history_days == 0 or not late_enough else late_enough[0]
    assert isinstance(chosen, date)
    return chosen


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium", help="the sample retailer's scale (default medium)")
    parser.add_argument("--seed", type=int, default=42, help="the sample retailer's seed (default 42)")
    parser.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=None,
        help="the date D, or the latest before it whose outcome is known (default: --history-days after "
        "the first order)",
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=HISTORY_DAYS,
        help=f"days of orders at least before D, by default {HISTORY_DAYS} like the judged base; 0: all there is",
    )
    parser.add_argument(
        "--shape",
        action="append",
        default=[],
        help=f"a shape to apply after {', '.join(SHAPES)} (e.g. fading: customers who slow down; "
        "drifting: customers whose interest comes and goes)",
    )
    parser.add_argument(
        "--spend-candidate", default=None, help="train clv_365d with this candidate only (e.g. bg_nbd_spend)"
    )
    args = parser.parse_args(argv)
    shapes = [*SHAPES, *args.shape]
    started = time.perf_counter()
    with throwaway_server() as (settings, env, _):
        runner = CliRunner()
        sample = ["sample", "--scale", args.scale, "--seed", str(args.seed)]
        result = runner.invoke(app, [*sample, *(f"--shape={s}" for s in shapes)], env=env)
        if result.exit_code != 0:
            raise SystemExit(f"storecast sample failed:\n{result.output}")
        config = load_config(SETTINGS, environ={})
        build(settings, config, quiet=True)
        specs = model_specs(config.values)
        with psycopg.connect(settings.conninfo, autocommit=True) as conn:
            as_of = _as_of(conn, args.as_of, args.history_days)
            if args.spend_candidate:
                specs["clv_365d"] = specs["clv_365d"].model_copy(
                    update={"candidates": [args.spend_candidate]}
                )
            for name in ("purchase_30d", "clv_365d"):
                trained = train_model(conn, specs[name], settings.models_dir, as_of)
                selection, level, why = conn.execute(
                    "select metrics -> 'selection', metrics ->> 'calibration_note', metrics ->> 'selection_note' "
                    "from ml.model_versions where model_name = %s and version = %s",
                    [name, trained.version],
                ).fetchone() or (None, None, None)
                on_validation = ", ".join(f"{k} {v:.4f}" for k, v in (selection or {}).items())
                print(
                    f"  {name}: trained as of {as_of}: {trained.estimator} ({trained.spec.selection_metric} "
                    f"{trained.selection_value:.4f} on its test window; on validation: {on_validation})"
                    + (f"; calibration: {level}" if level else "")
                    + (f"; selection: {why}" if why else "")
                )
                if trained.status != "champion":
                    registry.promote(conn, name, trained.version)
            score(conn, ["customer"], as_of, specs=specs)
            truth = _truth(conn, as_of)
            scored = {
                int(str(c)): (float(str(p)), float(str(s)))
                for c, p, s in _rows(
                    conn,
                    "select customer_id, purchase_probability, expected_spend from scores.customer where as_of_date = %s",
                    [as_of],
                )
            }
            history = _history(conn, as_of, truth["customer_id"])
            spec_features = specs["purchase_30d"].features
            numeric = list(spec_features.numeric)
            features = _customer_features(
                conn, as_of, truth["customer_id"], [*numeric, *spec_features.categorical]
            )
            recency = _recency_rule(conn, as_of, truth["recency"])
    ours = np.array([scored[int(c)] for c in truth["customer_id"]])
    bgnbd = BGNBD.fit(history["x"], history["t_x"], history["age"])
    gamma_gamma = GammaGamma.fit(history["x"], history["repeat_value"])
    p_buy = bgnbd.p_purchase(history["x"], history["t_x"], history["age"], HORIZON)
    expected = bgnbd.expected_purchases(history["x"], history["t_x"], history["age"], HORIZON) * (
        gamma_gamma.expected_value(history["x"], history["repeat_value"])
    )
    spend_features = features.assign(
        log_expected_spend=np.log(expected + 1e-3),
        log_last_period=np.log1p(np.maximum(history["last_period"], 0.0)),
    )
    n = len(truth["bought"])
    needed = _hindsight_customers(spend_features)
    hindsight = n >= needed
    if hindsight:
        hindsight_p = _hindsight(
            features.assign(bg_nbd_log_odds=logit(np.clip(p_buy, 1e-6, 1 - 1e-6))),
            [*numeric, "bg_nbd_log_odds"],
            truth["bought"],
            binary=True,
        )
        hindsight_spend = _hindsight(
            spend_features,
            [*numeric, "log_expected_spend", "log_last_period"],
            truth["spend"],
            binary=False,
        )
    print(
        f"{n:,} customers scored as of {as_of} ({HORIZON}-day outcome known), {truth['bought'].mean():.1%} bought; "
        f"settings: {' '.join('--var ' + s for s in SETTINGS)}; shapes: {', '.join(shapes)}"
    )
    print(
        f"BG/NBD r={bgnbd.r:.3f} alpha={bgnbd.alpha:.1f} a={bgnbd.a:.3f} b={bgnbd.b:.3f}; "
        f"Gamma-Gamma p={gamma_gamma.p:.2f} q={gamma_gamma.q:.2f} gamma={gamma_gamma.gamma:.1f}"
    )
    print()
    print(f"| {'purchase in 181 days':<30} | {'AUC':>6} | {'mean p':>6} |")
    print(f"|{'-' * 32}|--------|--------|")
    purchase_rows = (
        ("storecast", ours[:, 0]),
        ("recency rule", recency),
        ("BG/NBD", p_buy),
        *((("hindsight (D's outcomes)", hindsight_p),) if hindsight else ()),
    )
    for name, p in purchase_rows:
        print(f"| {name:<30} | {roc_auc_score(truth['bought'], p):6.3f} | {p.mean():6.3f} |")
    print(f"| {'(actual rate)':<30} | {'':>6} | {truth['bought'].mean():6.3f} |")
    print()
    print(
        f"| {'spend in 181 days':<30} | {'Gini':>6} | {'Spearman':>8} | {'MAE':>8} | {'RMSE':>8} | "
        f"{'predicted':>12} | {'actual':>12} |"
    )
    print(f"|{'-' * 32}|--------|----------|----------|----------|--------------|--------------|")
    print(_spend_row("storecast", truth["spend"], ours[:, 1]))
    print(_spend_row("last-period spend", truth["spend"], history["last_period"]))
    print(_spend_row("BG/NBD + Gamma-Gamma", truth["spend"], expected))
    if hindsight:
        print(_spend_row("hindsight (D's outcomes)", truth["spend"], hindsight_spend))
    print()
    print("storecast minus each baseline, with a 95 % interval from resampling the customers:")
    for name, p in (("recency rule", recency), ("BG/NBD", p_buy)):
        print(f"  AUC against {name:<26} {_paired(truth['bought'], ours[:, 0], p, roc_auc_score)}")
    for name, spend in (("last-period spend", history["last_period"]), ("BG/NBD + Gamma-Gamma", expected)):
        print(f"  Gini against {name:<25} {_paired(truth['spend'], ours[:, 1], spend, m.normalized_gini)}")
        print(f"  MAE against {name:<26} {_paired(truth['spend'], ours[:, 1], spend, _mae)}")
    if hindsight:
        print("hindsight minus BG/NBD (what the history holds beyond it), same intervals:")
        print(f"  AUC  {_paired(truth['bought'], hindsight_p, p_buy, roc_auc_score)}")
        print(f"  Gini {_paired(truth['spend'], hindsight_spend, expected, m.normalized_gini)}")
        print(f"  MAE  {_paired(truth['spend'], hindsight_spend, expected, _mae)}")
    else:
        print(
            f"hindsight not fitted: {n:,} customers for {spend_features.shape[1]} feature columns "
            f"(at least {MIN_HINDSIGHT_ROWS_PER_FEATURE} a column in each of {HINDSIGHT_FOLDS} folds: {needed:,})"
        )
    print(f"\nwhole run {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
