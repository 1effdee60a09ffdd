"""Read feature rows from Postgres into numpy with binary COPY.

Numeric columns (features, label, the time column) are cast in SQL to float8 with
NULL as NaN, so every row of the binary COPY stream has the same layout and the
whole stream decodes with one ``numpy.frombuffer`` against a structured dtype:
no per-row Python. Categorical columns (few, short strings) come through a text
COPY of the same temporary table. A row number in both streams proves they line up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import psycopg
from psycopg import sql

from training.spec import ModelSpec

Conn = psycopg.Connection[tuple[object, ...]]
_HEADER_BYTES = 19  # signature (11) + flags (4) + header extension length (4)
_TRAILER_BYTES = 2


class FeatureError(RuntimeError):
    """The feature relation does not have what the spec names."""


@dataclass
class Frame:
    """Rows of a feature relation: keys, features and (for training) the label."""

    keys: pd.DataFrame
    features: pd.DataFrame
    label: npt.NDArray[np.float64] | None
    time: npt.NDArray[np.datetime64]

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, mask: npt.NDArray[np.bool_]) -> Frame:
        """The rows where ``mask`` is true."""
        return Frame(
            keys=self.keys.loc[mask].reset_index(drop=True),
            features=self.features.loc[mask].reset_index(drop=True),
            label=None if self.label is None else self.label[mask],
            time=self.time[mask],
        )


def relation_columns(conn: Conn, relation: str) -> dict[str, str]:
    """Column name -> data type of ``schema.table``; empty when it does not exist."""
    schema, table = relation.split(".", 1)
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position",
        [schema, table],
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def check_columns(
    conn: Conn, relation: str, numeric: Sequence[str], categorical: Sequence[str], extra: Sequence[str] = ()
) -> dict[str, str]:
    """Verify that ``relation`` has the columns with usable types, naming every problem."""
    types = relation_columns(conn, relation)
    if not types:
        raise FeatureError(f"{relation} does not exist; run `storecast build` first")
    problems = []
    missing = [c for c in [*numeric, *categorical, *extra] if c not in types]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    numeric_types = {"double precision", "real", "integer", "bigint", "smallint", "numeric", "boolean"}
    wrong = [f"{c} is {types[c]}" for c in numeric if c in types and types[c] not in numeric_types]
    if wrong:
        problems.append(f"numeric features of a non-numeric type: {', '.join(wrong)}")
    wrong = [
        f"{c} is {types[c]}"
        for c in categorical
        if c in types and types[c] not in {"text", "character varying"}
    ]
    if wrong:
        problems.append(f"categorical features that are not text: {', '.join(wrong)}")
    if problems:
        raise FeatureError(f"{relation} does not match the spec: " + "; ".join(problems))
    return types


def _as_float8(column: str, kind: str) -> sql.Composable:
    value: sql.Composable = sql.Identifier(column)
    if kind == "boolean":
        value = sql.SQL("{}::int").format(value)
    return sql.SQL("coalesce({}::float8, 'NaN'::float8)").format(value)


def read_frame(
    conn: Conn,
    spec: ModelSpec,
    times: Sequence[date] | None = None,
    relation: str | None = None,
    with_label: bool = True,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    extra_numeric: Sequence[str] = (),
) -> Frame:
    """Read the rows of ``relation`` (default the spec's) whose time column is in ``times``.

    With ``with_label`` only rows whose label has matured (is not NULL) are read.
    ``numeric`` and ``categorical`` default to the spec's features (a champion
    trained on other columns passes its own). ``extra_numeric`` columns (e.g. a
    baseline's input) are read as features too.
    """
    rows = RowSource(conn, spec, times, relation, with_label, numeric, categorical, extra_numeric)
    try:
        return rows.fetch(0, len(rows))
    finally:
        rows.close()


class RowSource:
    """Feature rows materialised once in a temporary table, then decoded in any number of chunks."""

    def __init__(
        self,
        conn: Conn,
        spec: ModelSpec,
        times: Sequence[date] | None = None,
        relation: str | None = None,
        with_label: bool = True,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        extra_numeric: Sequence[str] = (),
    ) -> None:
        self.conn = conn
        self.spec = spec
        self.with_label = with_label
        relation = relation or spec.relation
        numeric = list(spec.features.numeric if numeric is None else numeric)
        self.categorical = list(spec.features.categorical if categorical is None else categorical)
        self.numeric = list(dict.fromkeys([*numeric, *extra_numeric]))
        self.keys = [k for k in spec.keys if k != spec.time_column]
        types = check_columns(
            conn,
            relation,
            self.numeric,
            self.categorical,
            [*self.keys, spec.time_column, *([spec.label] if with_label else [])],
        )
        schema, table = relation.split(".", 1)
        conditions: list[sql.Composable] = [sql.SQL("true")]
        params: list[Any] = []
        if with_label:
            conditions.append(sql.SQL("{} is not null").format(sql.Identifier(spec.label)))
        if times is not None:
            conditions.append(sql.SQL("{} = any(%s)").format(sql.Identifier(spec.time_column)))
            params.append(list(times))
        self.float_columns = [*self.keys, *self.numeric, *([spec.label] if with_label else [])]
        conn.execute("drop table if exists pg_temp._training_rows")
        conn.execute(
            sql.SQL(
                "create temp table _training_rows as select row_number() over () as _row, {time} as _time, "
                "{floats}{cats} from {rel} where {where}"
            ).format(
                time=sql.SQL("({} - date '2000-01-01')::int").format(sql.Identifier(spec.time_column)),
                floats=sql.SQL(", ").join(
                    sql.SQL("{} as {}").format(_as_float8(c, types[c]), sql.Identifier(f"f_{i}"))
                    for i, c in enumerate(self.float_columns)
                ),
                cats=sql.SQL("").join(
                    sql.SQL(", coalesce({}, '') as {}").format(sql.Identifier(c), sql.Identifier(f"c_{i}"))
                    for i, c in enumerate(self.categorical)
                ),
                rel=sql.Identifier(schema, table),
                where=sql.SQL(" and ").join(conditions),
            ),
            params,
        )
        count = conn.execute("select count(*) from _training_rows").fetchone()
        self._rows = int(str(count[0])) if count else 0

    def __len__(self) -> int:
        return self._rows

    def fetch(self, start: int, stop: int) -> Frame:
        """Rows ``start`` (inclusive) to ``stop`` (exclusive), in a stable order."""
        window = sql.SQL("where _row > {} and _row <= {}").format(sql.Literal(start), sql.Literal(stop))
        fixed = ["_row", "_time", *[f"f_{i}" for i in range(len(self.float_columns))]]
        raw = _copy_binary(self.conn, fixed, window)
        dtype = np.dtype(
            [("nfields", ">i2"), ("l_row", ">i4"), ("_row", ">i8"), ("l_time", ">i4"), ("_time", ">i4")]
            + [f for i in range(len(self.float_columns)) for f in ((f"l{i}", ">i4"), (f"f{i}", ">f8"))]
        )
        rows = np.frombuffer(raw, dtype=dtype)
        order = rows["_row"].astype(np.int64)
        values = {c: rows[f"f{i}"].astype(np.float64) for i, c in enumerate(self.float_columns)}
        cats = _copy_text(self.conn, len(self.categorical), len(rows), order, window)
        time = np.datetime64("2000-01-01", "D") + rows["_time"].astype(np.int64).astype("timedelta64[D]")
        key_frame = pd.DataFrame({k: values[k].astype(np.int64) for k in self.keys})
        key_frame[self.spec.time_column] = time
        # ONNX Runtime reads float32 inputs: fit and evaluate on the same float32-rounded
        # numbers, or tree thresholds learnt between two float64 values can land on the
        # other side of a float32 input and send a row down another branch.
        features = pd.DataFrame({c: values[c].astype(np.float32).astype(np.float64) for c in self.numeric})
        for i, c in enumerate(self.categorical):
            features[c] = cats[:, i]
        return Frame(
            keys=key_frame,
            features=features,
            label=values[self.spec.label] if self.with_label else None,
            time=time,
        )

    def close(self) -> None:
        """Drop the temporary table."""
        self.conn.execute("drop table if exists pg_temp._training_rows")


def _copy_binary(conn: Conn, columns: list[str], window: sql.Composable) -> bytes:
    statement = sql.SQL(
        "copy (select {} from _training_rows {} order by _row) to stdout (format binary)"
    ).format(sql.SQL(", ").join(sql.Identifier(c) for c in columns), window)
    buffer = bytearray()
    with conn.cursor().copy(statement) as copy:
        for chunk in copy:
            buffer += chunk
    return bytes(buffer[_HEADER_BYTES:-_TRAILER_BYTES])


def _copy_text(
    conn: Conn, n_columns: int, n_rows: int, order: npt.NDArray[np.int64], window: sql.Composable
) -> npt.NDArray[Any]:
    if n_columns == 0:
        return np.empty((n_rows, 0), dtype=object)
    statement = sql.SQL("copy (select _row, {} from _training_rows {} order by _row) to stdout").format(
        sql.SQL(", ").join(sql.Identifier(f"c_{i}") for i in range(n_columns)), window
    )
    buffer = bytearray()
    with conn.cursor().copy(statement) as copy:
        for chunk in copy:
            buffer += chunk
    lines = buffer.decode("utf-8").split("\n")[:-1] if buffer else []
    table = np.array([line.split("\t") for line in lines], dtype=object).reshape(len(lines), n_columns + 1)
    if len(table) != n_rows or not np.array_equal(table[:, 0].astype(np.int64), order):
        raise RuntimeError("numeric and categorical feature streams are out of step")
    # COPY text escapes backslashes; categories are plain labels, so unescape just that.
    return (
        np.vectorize(lambda v: v.replace("\\\\", "\\"), otypes=[object])(table[:, 1:])
        if n_rows
        else table[:, 1:]
    )


def time_counts(conn: Conn, spec: ModelSpec, until: date | None = None) -> list[tuple[date, int]]:
    """Matured rows per value of the time column, oldest first (optionally up to ``until``)."""
    schema, table = spec.relation.split(".", 1)
    where = sql.SQL("{} is not null").format(sql.Identifier(spec.label))
    params: list[Any] = []
    if until is not None:
        where = sql.SQL("{} and {} <= %s").format(where, sql.Identifier(spec.time_column))
        params.append(until)
    rows = conn.execute(
        sql.SQL("select {t}, count(*) from {rel} where {w} group by 1 order by 1").format(
            t=sql.Identifier(spec.time_column), rel=sql.Identifier(schema, table), w=where
        ),
        params,
    ).fetchall()
    return [(row[0], int(str(row[1]))) for row in rows]  # type: ignore[misc]
