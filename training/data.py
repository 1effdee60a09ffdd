"""Read feature rows from Postgres into numpy with one streamed binary COPY.

Every field of the COPY is sent as a non-NULL 8-byte value: keys, the time column
(days since 2000-01-01) and categorical codes as int8, numeric features and the
label as float8 with NULL as NaN. Every row then has the same layout, so each chunk
of the stream decodes with one strided numpy view (``storecast.database.pgbinary``): no
per-row Python beyond receiving the rows, no temporary table, bounded memory.
Categorical values (few, short labels) are looked up once and sent as their
position in that list.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from psycopg import sql
from psycopg.rows import class_row

from storecast.database.pgbinary import copy_out_fixed8
from storecast.db import Conn, relation_columns, scalar
from storecast.training.errors import FeatureError
from storecast.training.spec import ModelSpec

#: Rows decoded at a time: bounds the reader's memory whatever the relation's size.
CHUNK_ROWS = 50_000
_EPOCH = np.datetime64("2000-01-01", "D")


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

    def at(self, times: Sequence[date]) -> npt.NDArray[np.bool_]:
        """Whether each row's time value is one of ``times`` (a mask for :meth:`subset`)."""
        return np.isin(self.time, np.array(times, dtype="datetime64[D]"))

    @classmethod
    def concat(cls, frames: list[Frame]) -> Frame:
        """The rows of ``frames`` one after the other (each labelled). An empty read has no
        label and default dtypes, so empty frames are left out rather than concatenated."""
        parts = [frame for frame in frames if len(frame)]
        return cls(
            keys=pd.concat([p.keys for p in parts], ignore_index=True),
            features=pd.concat([p.features for p in parts], ignore_index=True),
            label=np.concatenate([p.label for p in parts if p.label is not None]),
            time=np.concatenate([p.time for p in parts]),
        )


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
    # Integer keys (product, store) are categories too; every category is read as text.
    categorical_types = {"text", "character varying", "integer", "bigint", "smallint"}
    wrong = [f"{c} is {types[c]}" for c in categorical if c in types and types[c] not in categorical_types]
    if wrong:
        problems.append(f"categorical features that are neither text nor integer: {', '.join(wrong)}")
    if problems:
        raise FeatureError(f"{relation} does not match the spec: " + "; ".join(problems))
    return types


def as_float8(column: str, kind: str, null: str = "NaN") -> sql.Composable:
    """``column`` of type ``kind`` as a float8 expression: booleans as 0/1, NULL as NaN
    (or kept NULL with ``null="NULL"``)."""
    value: sql.Composable = sql.SQL("{}::float8").format(
        sql.SQL("{}::int").format(sql.Identifier(column)) if kind == "boolean" else sql.Identifier(column)
    )
    if null == "NULL":
        return value
    return sql.SQL("coalesce({}, 'NaN'::float8)").format(value)


class FeatureReader:
    """The rows of ``relation`` (default the spec's) whose time column is in ``times``
    (default: all), as one :class:`Frame` (:meth:`read`) or a stream of them (:meth:`frames`).

    With ``with_label`` only rows whose label has matured (is not NULL) are read;
    with ``matured_by`` only rows whose label window had closed by that date.
    ``numeric`` and ``categorical`` default to the spec's features (a champion
    trained on other columns passes its own). ``extra_numeric`` columns (e.g. a
    baseline's input) are read as features too.
    """

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
        matured_by: date | None = None,
    ) -> None:
        self.conn = conn
        self.spec = spec
        self.relation = relation or spec.relation
        self.with_label = with_label
        self.keys = [k for k in spec.keys if k != spec.time_column]
        self.numeric = list(
            dict.fromkeys([*(spec.features.numeric if numeric is None else numeric), *extra_numeric])
        )
        self.categorical = list(spec.features.categorical if categorical is None else categorical)
        label = [spec.label] if with_label else []
        types = check_columns(
            conn, self.relation, self.numeric, self.categorical, [*self.keys, spec.time_column, *label]
        )
        conditions: list[sql.Composable] = [sql.SQL("true")]
        self.params: list[Any] = []
        if with_label:
            conditions.append(sql.SQL("{} is not null").format(sql.Identifier(spec.label)))
        if matured_by is not None:
            condition, params = matured(spec, matured_by)
            conditions.append(condition)
            self.params.extend(params)
        if times is not None:
            conditions.append(sql.SQL("{} = any(%s)").format(sql.Identifier(spec.time_column)))
            self.params.append(list(times))
        relation_id = sql.Identifier(*self.relation.split(".", 1))
        where = sql.SQL(" and ").join(conditions)
        self.categories = self._categories(relation_id, where)
        self.int_fields: list[sql.Composable] = [
            *(sql.SQL("{}::int8").format(sql.Identifier(k)) for k in self.keys),
            sql.SQL("({} - date '2000-01-01')::int8").format(sql.Identifier(spec.time_column)),
            *(
                # 0 (not in the list) can only mean the relation changed since the lookup.
                sql.SQL("coalesce(array_position({}::text[], coalesce({}::text, '')), 0)::int8").format(
                    sql.Literal(self.categories[c]), sql.Identifier(c)
                )
                for c in self.categorical
            ),
        ]
        self.float_fields = [as_float8(c, types[c]) for c in [*self.numeric, *label]]
        self.statement = sql.SQL("copy (select {} from {} where {}) to stdout (format binary)").format(
            sql.SQL(", ").join([*self.int_fields, *self.float_fields]), relation_id, where
        )

    def _categories(self, relation: sql.Composable, where: sql.Composable) -> dict[str, list[str]]:
        if not self.categorical:
            return {}
        row = self.conn.execute(
            sql.SQL("select {} from {} where {}").format(
                sql.SQL(", ").join(
                    sql.SQL("coalesce(array_agg(distinct coalesce({}::text, '')), '{{}}')").format(
                        sql.Identifier(c)
                    )
                    for c in self.categorical
                ),
                relation,
                where,
            ),
            self.params,
        ).fetchone()
        assert row is not None
        return {c: list(values) for c, values in zip(self.categorical, row, strict=True)}  # type: ignore[call-overload]

    def _stream(self, chunk_rows: int | None) -> Generator[_Chunk]:
        n_int = len(self.int_fields)
        n_numeric = len(self.numeric)
        try:
            for fields in copy_out_fixed8(
                self.conn,
                self.statement,
                n_int + len(self.float_fields),
                chunk_rows or CHUNK_ROWS,
                self.params,
            ):
                floats = fields[:, n_int:].view(">f8")
                # Column-major, so each column is contiguous and pandas takes it without copying.
                # ONNX Runtime reads float32 inputs: training fits on the same float32-rounded
                # numbers, or tree thresholds learnt between two float64 values can land on the
                # other side of a float32 input and send a row down another branch.
                yield _Chunk(
                    fields[:, :n_int].astype(np.int64, order="F"),
                    floats[:, :n_numeric].astype(np.float32, order="F"),
                    floats[:, n_numeric].astype(np.float64) if self.with_label else None,
                )
        except ValueError as error:
            raise FeatureError(
                f"{self.relation}: a key or {self.spec.time_column} is NULL ({error})"
            ) from error

    def frames(self, chunk_rows: int | None = None) -> Generator[Frame]:
        """Stream the rows as frames of up to ``chunk_rows`` (default :data:`CHUNK_ROWS`) rows,
        numeric features as float32 (what ONNX Runtime reads)."""
        for chunk in self._stream(chunk_rows):
            yield self._frame(chunk)

    def read(self) -> Frame:
        """All the rows as one frame, numeric features as float64 (what scikit-learn fits on),
        ordered by the time column and then the keys.

        The order is fixed because fitting follows it (gradient boosting's early-stopping
        split, the sums of a linear fit): without it the same rows read after a rebuild
        or a VACUUM FULL, which moves them on disk, would train a different model.
        """
        parts = list(self._stream(None))
        if not parts:
            n_int = len(self.int_fields)
            empty = _Chunk(np.empty((0, n_int), np.int64), np.empty((0, len(self.numeric)), np.float32), None)
            return self._frame(empty, np.float64)
        whole = _Chunk(
            _stack([p.ints for p in parts]),
            _stack([p.numeric for p in parts]),
            None
            if parts[0].label is None
            else np.concatenate([p.label for p in parts if p.label is not None]),
        )
        return self._frame(_sorted(whole, len(self.keys)), np.float64)

    def _frame(self, chunk: _Chunk, dtype: type[np.floating[Any]] = np.float32) -> Frame:
        n_keys = len(self.keys)
        time = _EPOCH + chunk.ints[:, n_keys].astype("timedelta64[D]")
        keys = pd.DataFrame({k: chunk.ints[:, i] for i, k in enumerate(self.keys)})
        keys[self.spec.time_column] = time
        numeric = chunk.numeric.astype(dtype, order="F", copy=False)
        features = pd.DataFrame(numeric, columns=self.numeric, copy=False)
        for i, c in enumerate(self.categorical):
            codes = chunk.ints[:, n_keys + 1 + i]
            if len(codes) and codes.min() < 1:
                raise FeatureError(f"{self.relation}.{c} gained a value while it was read; read it again")
            features[c] = np.asarray(self.categories[c], dtype=object)[codes - 1]
        return Frame(keys=keys, features=features, label=chunk.label, time=time)


@dataclass
class _Chunk:
    """Decoded rows: int fields (keys, time, category codes), numeric features, label."""

    ints: npt.NDArray[np.int64]
    numeric: npt.NDArray[np.float32]
    label: npt.NDArray[np.float64] | None


def _sorted(chunk: _Chunk, n_keys: int) -> _Chunk:
    """``chunk``'s rows ordered by time (the int field after the keys), then the keys in order."""
    ints = chunk.ints
    # lexsort's last key is the primary one.
    order = np.lexsort([*(ints[:, i] for i in reversed(range(n_keys))), ints[:, n_keys]])
    if np.array_equal(order, np.arange(len(order))):
        return chunk
    return _Chunk(
        _rows_taken(ints, order),
        _rows_taken(chunk.numeric, order),
        None if chunk.label is None else chunk.label[order],
    )


def _rows_taken(array: npt.NDArray[Any], order: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
    """``array``'s rows in ``order``, column-major, one column at a time (one copy of memory)."""
    out = np.empty_like(array, order="F")
    for j in range(array.shape[1]):
        np.take(array[:, j], order, out=out[:, j])
    return out


def _stack(parts: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """Concatenate row chunks into one column-major array."""
    out = np.empty((sum(len(p) for p in parts), parts[0].shape[1]), dtype=parts[0].dtype, order="F")
    return np.concatenate(parts, out=out)


def matured(spec: ModelSpec, by: date) -> tuple[sql.Composable, list[Any]]:
    """A condition for rows whose label window ends on or before ``by``, with its parameters.

    The window of a forecast row is its target period; any other row's runs
    ``horizon_days`` from its time column. A label built later than ``by`` (after a
    backfill) can still be NULL-free while looking past ``by``: this keeps it out.
    """
    time = sql.Identifier(spec.time_column)
    if spec.task == "forecast":
        return sql.SQL("{} + target_offset_days + %s::interval <= %s").format(time), [
            spec.period_interval,
            by,
        ]
    return sql.SQL("{} + %s <= %s").format(time), [spec.horizon_days, by]


#: The column of a feature relation that marks a label taken from an override (raw.overrides).
OVERRIDDEN = "label_overridden"


def overridden_labels(
    conn: Conn, spec: ModelSpec, times: list[date], matured_by: date | None = None
) -> int | None:
    """Labelled rows at ``times`` whose label a person overrode; ``None`` when the relation
    has no overrides (no :data:`OVERRIDDEN` column)."""
    if OVERRIDDEN not in relation_columns(conn, spec.relation):
        return None
    where, params = labelled(spec, matured_by)
    schema, table = spec.relation.split(".")
    count: int = scalar(
        conn,
        sql.SQL("select count(*) from {} where {} and {} = any(%s) and {}").format(
            sql.Identifier(schema, table), where, sql.Identifier(spec.time_column), sql.Identifier(OVERRIDDEN)
        ),
        [*params, times],
    )
    return count


def labelled(spec: ModelSpec, matured_by: date | None = None) -> tuple[sql.Composable, list[Any]]:
    """A condition for rows with a label (matured by ``matured_by`` when given), with its parameters."""
    where: sql.Composable = sql.SQL("{} is not null").format(sql.Identifier(spec.label))
    if matured_by is None:
        return where, []
    condition, params = matured(spec, matured_by)
    return sql.SQL("{} and {}").format(where, condition), params


#: The spine's column marking the as-of dates training reads (features.as_of_dates).
TRAINING_DATE = "is_training_date"


def on_training_dates(conn: Conn, spec: ModelSpec) -> sql.Composable:
    """A condition for rows at the time values training reads: for a relation on the spine
    (``time_on_spine``), the dates ``features.as_of_dates`` marks :data:`TRAINING_DATE`,
    not a date scored off the weekly grid (kept for its backtest: a run every day would
    otherwise make the held-out dates days apart); else every row. Every row too while
    the spine was built by a storecast before the column."""
    if not spec.time_on_spine or TRAINING_DATE not in relation_columns(conn, "features.as_of_dates"):
        return sql.SQL("true")
    return sql.SQL("{} in (select as_of_date from features.as_of_dates where {})").format(
        sql.Identifier(spec.time_column), sql.Identifier(TRAINING_DATE)
    )


@dataclass(frozen=True)
class _TimeCount:
    time: date
    rows: int


def time_counts(conn: Conn, spec: ModelSpec, matured_by: date | None = None) -> list[tuple[date, int]]:
    """Rows with a matured label per value of the time column that training reads
    (:func:`on_training_dates`), oldest first; with ``matured_by`` only those whose label
    window had closed by that date."""
    schema, table = spec.relation.split(".", 1)
    where, params = labelled(spec, matured_by)
    counts = conn.cursor(row_factory=class_row(_TimeCount)).execute(
        sql.SQL(
            "select {t} as time, count(*) as rows from {rel} where {w} and {d} group by 1 order by 1"
        ).format(
            t=sql.Identifier(spec.time_column),
            rel=sql.Identifier(schema, table),
            w=where,
            d=on_training_dates(conn, spec),
        ),
        params,
    )
    return [(count.time, count.rows) for count in counts]
