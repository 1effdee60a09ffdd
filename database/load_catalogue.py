"""What the loader knows of a raw table, read from the catalog: columns, keys,
CHECK, UNIQUE, exclusion and foreign-key constraints; and whether a file's header
matches it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from storecast.database.bulk import RAW_SCHEMA

#: Tables the loader may write; the bookkeeping tables are written by storecast only.
NOT_LOADABLE = frozenset({"loads", "load_rejects", "schema_versions", "overrides", "key_codes"})
_LIKELY_DELIMITERS = (";", "\t", "|")


class LoadError(Exception):
    """The file as a whole cannot be loaded (no header, wrong columns, unknown table...)."""


@dataclass(frozen=True)
class TableColumn:
    """A column of the target table, as the catalog describes it."""

    name: str
    type: str
    not_null: bool
    has_default: bool
    #: The default's SQL expression (none for an identity column).
    default: str | None = None

    @property
    def required(self) -> bool:
        """A value must come from the file: NOT NULL and no default."""
        return self.not_null and not self.has_default


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key of the target table."""

    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class TableInfo:
    """What the loader needs to know about a raw table."""

    name: str
    columns: tuple[TableColumn, ...]
    primary_key: tuple[str, ...]
    checks: tuple[tuple[str, tuple[str, ...], str], ...]  # (name, columns, expression)
    foreign_keys: tuple[ForeignKey, ...]
    #: UNIQUE constraints other than the primary key: (name, columns).
    unique: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Exclusion constraints: (name, ((column, operator), ...)).
    exclusions: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def column(self, name: str) -> TableColumn:
        """The column called ``name``."""
        return next(c for c in self.columns if c.name == name)


def loadable_tables(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """The raw tables a file may be loaded into, by name."""
    return [
        str(r[0])
        for r in conn.execute(
            "select table_name from information_schema.tables "
            "where table_schema = %s and table_type = 'BASE TABLE' order by 1",
            [RAW_SCHEMA],
        ).fetchall()
        if str(r[0]) not in NOT_LOADABLE
    ]


def table_info(conn: psycopg.Connection[tuple[object, ...]], table: str) -> TableInfo:
    """Describe ``raw.<table>`` from the catalog.

    Raises
    ------
    LoadError
        If the table does not exist or is not loadable.
    """
    loadable = loadable_tables(conn)
    if table not in loadable:
        raise LoadError(f"unknown table {table!r}; loadable raw tables are: {', '.join(loadable)}")
    oid_row = conn.execute("select %s::regclass::oid", [f"{RAW_SCHEMA}.{table}"]).fetchone()
    assert oid_row is not None
    oid = oid_row[0]
    columns = tuple(
        TableColumn(
            str(name),
            str(typ),
            bool(notnull),
            default is not None or bool(str(ident)),
            None if default is None else str(default),
        )
        for name, typ, notnull, ident, default in conn.execute(
            """
            select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
                   pg_get_expr(d.adbin, d.adrelid)
            from pg_attribute a
            left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
            where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
            order by a.attnum
            """,
            [oid],
        ).fetchall()
    )

    def names(attnums: object, rel: object = oid) -> tuple[str, ...]:
        rows = conn.execute(
            "select attname from unnest(%s::int2[]) with ordinality k(n, i) "
            "join pg_attribute a on a.attrelid = %s and a.attnum = k.n order by k.i",
            [attnums, rel],
        ).fetchall()
        return tuple(str(r[0]) for r in rows)

    pk_row = conn.execute(
        "select conkey from pg_constraint where conrelid = %s and contype = 'p'", [oid]
    ).fetchone()
    checks = []
    foreign_keys = []
    unique = []
    exclusions = []
    for name, contype, conkey, confrelid, confkey, ref_name, definition, operators in conn.execute(
        """
        select conname, contype, conkey, confrelid, confkey, confrelid::regclass::text,
               pg_get_constraintdef(oid),
               (select array_agg(format('operator(%%I.%%s)', n.nspname, op.oprname) order by u.i)
                from unnest(conexclop) with ordinality u(o, i)
                join pg_operator op on op.oid = u.o join pg_namespace n on n.oid = op.oprnamespace)
        from pg_constraint where conrelid = %s and contype in ('c', 'f', 'u', 'x') order by conname
        """,
        [oid],
    ).fetchall():
        if contype == "c":
            expression = re.sub(r"^CHECK\s*", "", str(definition))
            checks.append((str(name), names(conkey), expression))
        elif contype == "u":
            unique.append((str(name), names(conkey)))
        elif contype == "x":
            ops = [str(o) for o in operators or []]  # type: ignore[attr-defined]
            cols = names(conkey)
            if len(cols) == len(ops):  # one on expressions is left to the insert to enforce
                exclusions.append((str(name), tuple(zip(cols, ops, strict=True))))
        else:
            foreign_keys.append(
                ForeignKey(str(name), names(conkey), str(ref_name), names(confkey, confrelid))
            )
    return TableInfo(
        name=table,
        columns=columns,
        primary_key=names(pk_row[0]) if pk_row else (),
        checks=tuple(checks),
        foreign_keys=tuple(foreign_keys),
        unique=tuple(unique),
        exclusions=tuple(exclusions),
    )


#: The first column's header when pandas writes a frame's unnamed index (``to_csv`` without
#: ``index=False``), and how pandas reads such a header back (``Unnamed: 0``).
PANDAS_INDEX_HEADERS = ("", "Unnamed: 0")


def check_header(header: list[str], info: TableInfo, path: Path, delimiter: str) -> list[str]:
    names = [h.strip() for h in header]
    known = {c.name for c in info.columns}
    if len(names) == 1 and names[0] not in known:
        for candidate in _LIKELY_DELIMITERS:
            if candidate != delimiter and candidate in names[0]:
                shown = "\\t" if candidate == "\t" else candidate
                raise LoadError(
                    f"{path}: line 1 has a single column {names[0][:80]!r}; the file looks "
                    f"{shown!r}-delimited, not {delimiter!r}-delimited (pass --delimiter '{shown}')"
                )
    problems = []
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
    if duplicates:
        problems.append(f"columns named more than once: {', '.join(duplicates)}")
    by_lower = {c.name.lower(): c.name for c in info.columns}
    unknown = [n for n in names if n not in known]
    case_only = [n for n in unknown if n.lower() in by_lower]
    if case_only:
        problems.append(
            "column names differ from the table's only in case (names are case-sensitive): "
            + ", ".join(f"{n!r} should be {by_lower[n.lower()]!r}" for n in case_only)
        )
    pandas_index = bool(names) and names[0] in PANDAS_INDEX_HEADERS
    if pandas_index:
        # pandas' to_csv writes the frame's row index first, under no name, unless told not to.
        problems.append(
            f"the first column is named {names[0]!r}, as pandas names a frame's index: "
            "write the file with to_csv(..., index=False)"
        )
    unnamed = [i + 1 for i, n in enumerate(names) if n == "" and (i > 0 or not pandas_index)]
    if unnamed:
        # A delimiter at the end of every line, or a column a spreadsheet kept after its last.
        problems.append(
            f"column {', '.join(map(str, unnamed))} of {len(names)} has no name (a delimiter at the "
            "end of the lines, or an empty column a spreadsheet kept): remove it from the file"
        )
    other_unknown = [
        n for n in unknown if n not in case_only and n != "" and not (pandas_index and n == names[0])
    ]
    if other_unknown:
        problems.append(f"unknown columns: {', '.join(repr(n) for n in other_unknown)}")
    lowered = {n.lower() for n in names}
    # A required column present with the wrong case is reported above, not twice.
    missing = [c.name for c in info.columns if c.required and c.name.lower() not in lowered]
    if missing:
        problems.append(f"missing required columns: {', '.join(missing)}")
    if problems:
        expected = ", ".join(c.name + ("" if c.required else "?") for c in info.columns)
        raise LoadError(
            f"{path}: header does not match raw.{info.name}: "
            + "; ".join(problems)
            + f". Expected columns ({RAW_SCHEMA}.{info.name}, ? = optional): {expected}"
        )
    return names
