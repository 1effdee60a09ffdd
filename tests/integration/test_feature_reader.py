"""FeatureReader against the real server: the streamed binary COPY decodes to exactly what SQL holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np
import pandas as pd
import pytest

from storecast.db import Conn
from storecast.training.data import FeatureReader
from storecast.training.errors import FeatureError
from storecast.training.spec import ModelSpec

ROWS = 1_003  # not a multiple of any chunk size below


def _spec(categorical: list[str]) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "name": "reader_test",
            "description": "reader test",
            "task": "binary",
            "relation": "reader_test.features",
            "keys": ["customer_id", "as_of_date"],
            "label": "label",
            "horizon_days": 1,
            "features": {"numeric": ["amount", "visits", "is_member"], "categorical": categorical},
            "candidates": ["logistic_regression"],
            "selection_metric": "roc_auc",
            "baseline": "recency_rule",
        }
    )


@pytest.fixture
def relation(conn: Conn) -> Iterator[str]:
    conn.execute("drop schema if exists reader_test cascade")
    conn.execute("create schema reader_test")
    conn.execute(
        """
        create table reader_test.features as
        select (g * 7919)::bigint * 1000003 as customer_id,
               date '2026-01-01' + (g %% 3) as as_of_date,
               case when g %% 11 = 0 then null else g * 1.25 - 400 end::float8 as amount,
               case when g %% 13 = 0 then null else g %% 17 end::int as visits,
               (g %% 2 = 0) as is_member,
               (array['north', 'south', E'tab\\there', 'back\\slash', 'café', null])[g %% 6 + 1] as region,
               case when g %% 5 = 0 then null else (g %% 2)::float8 end as label
        from generate_series(1, %s) g
        """,
        [ROWS],
    )
    yield "reader_test.features"
    conn.execute("drop schema reader_test cascade")


def _expected(conn: Conn, where: str = "true") -> list[tuple[object, ...]]:
    return conn.execute(
        "select customer_id, as_of_date, coalesce(amount, 'NaN'), coalesce(visits::float8, 'NaN'), "
        f"is_member::int::float8, coalesce(region, ''), label from reader_test.features where {where} "
        "order by customer_id"
    ).fetchall()


def _rows(reader: FeatureReader, chunk_rows: int | None = None) -> list[tuple[object, ...]]:
    rows = []
    for frame in [reader.read()] if chunk_rows is None else reader.frames(chunk_rows):
        for i in range(len(frame)):
            rows.append(
                (
                    int(frame.keys["customer_id"][i]),
                    frame.keys["as_of_date"][i].date(),
                    *(float(frame.features[c][i]) for c in ["amount", "visits", "is_member"]),
                    frame.features["region"][i],
                    None if frame.label is None or np.isnan(frame.label[i]) else float(frame.label[i]),
                )
            )
    return sorted(rows, key=lambda r: int(str(r[0])))


def _same(actual: list[tuple[object, ...]], expected: list[tuple[object, ...]]) -> None:
    assert len(actual) == len(expected) > 0
    for a, e in zip(actual, expected, strict=True):
        assert a[:2] == e[:2]
        assert a[5:] == e[5:]
        # Features arrive float32-rounded, as ONNX Runtime reads them.
        np.testing.assert_array_equal(
            np.array(a[2:5], dtype=np.float64), np.array(e[2:5], dtype=np.float32).astype(np.float64)
        )


@pytest.mark.parametrize("chunk_rows", [None, 1, 64, 50_000])
def test_rows_decode_to_what_sql_holds(conn: Conn, relation: str, chunk_rows: int | None) -> None:
    reader = FeatureReader(conn, _spec(["region"]), with_label=False)
    expected = [(*row[:6], None) for row in _expected(conn)]
    _same(_rows(reader, chunk_rows), expected)


def test_training_reads_only_matured_labels_of_the_asked_dates(conn: Conn, relation: str) -> None:
    days = [date(2026, 1, 2), date(2026, 1, 3)]
    reader = FeatureReader(conn, _spec(["region"]), times=days)
    frame = reader.read()
    assert frame.features["amount"].dtype == np.float64  # what scikit-learn fits on
    _same(_rows(reader), _expected(conn, "label is not null and as_of_date in ('2026-01-02', '2026-01-03')"))


def test_no_matching_rows_is_an_empty_frame(conn: Conn, relation: str) -> None:
    reader = FeatureReader(conn, _spec(["region"]), times=[date(2030, 1, 1)])
    frame = reader.read()
    assert len(frame) == 0
    assert list(frame.features.columns) == ["amount", "visits", "is_member", "region"]
    assert list(reader.frames()) == []


def test_a_null_key_is_reported_by_relation(conn: Conn, relation: str) -> None:
    conn.execute("update reader_test.features set customer_id = null where visits = 3")
    with pytest.raises(FeatureError, match=r"reader_test\.features: a key or as_of_date is NULL"):
        FeatureReader(conn, _spec([]), with_label=False).read()


def test_the_connection_is_usable_after_a_stream_is_abandoned(conn: Conn, relation: str) -> None:
    frames = FeatureReader(conn, _spec([]), with_label=False).frames(10)
    assert len(next(frames)) == 10
    frames.close()
    assert conn.execute("select count(*) from reader_test.features").fetchone() == (ROWS,)


def test_training_rows_come_in_one_order_whatever_their_order_on_disk(conn: Conn, relation: str) -> None:
    # Fitting follows row order, so a rebuild that moves the rows must not move the model.
    before = FeatureReader(conn, _spec(["region"])).read()
    conn.execute(
        "create table reader_test.shuffled as select * from reader_test.features order by md5(customer_id::text)"
    )
    conn.execute("drop table reader_test.features")
    conn.execute("alter table reader_test.shuffled rename to features")
    after = FeatureReader(conn, _spec(["region"])).read()
    pd.testing.assert_frame_equal(after.keys, before.keys)
    pd.testing.assert_frame_equal(after.features, before.features)
    np.testing.assert_array_equal(after.label, before.label)
    order = after.keys.sort_values(["as_of_date", "customer_id"]).index.to_numpy()
    np.testing.assert_array_equal(order, np.arange(len(after)))
