"""The CSV loader's file-level checks, which need no database."""

from __future__ import annotations

from pathlib import Path

import pytest

from storecast.database.csv_records import ENCODING_HINT, check_encoding
from storecast.database.csv_records import records as _records
from storecast.database.load_catalogue import LoadError, TableColumn, TableInfo
from storecast.database.load_catalogue import check_header as _check_header

CUSTOMERS = TableInfo(
    name="customers",
    columns=(
        TableColumn("customer_id", "bigint", not_null=True, has_default=False),
        TableColumn("signup_date", "date", not_null=True, has_default=False),
        TableColumn("region", "text", not_null=True, has_default=False),
        TableColumn("email_opt_in", "boolean", not_null=True, has_default=True),
    ),
    primary_key=("customer_id",),
    checks=(),
    foreign_keys=(),
)


def test_a_matching_header_in_any_order_is_accepted() -> None:
    assert _check_header(["region", " customer_id ", "signup_date"], CUSTOMERS, Path("f.csv"), ",") == [
        "region",
        "customer_id",
        "signup_date",
    ]


def test_missing_required_column_is_named() -> None:
    with pytest.raises(LoadError, match=r"missing required columns: region"):
        _check_header(["customer_id", "signup_date"], CUSTOMERS, Path("f.csv"), ",")


def test_unknown_column_is_named_with_the_expected_list() -> None:
    with pytest.raises(LoadError, match=r"unknown columns: 'shoe_size'.*Expected columns.*email_opt_in\?"):
        _check_header(["customer_id", "signup_date", "region", "shoe_size"], CUSTOMERS, Path("f.csv"), ",")


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (["", "customer_id", "signup_date", "region"], ["the first column is named '', as pandas names"]),
        (["Unnamed: 0", "customer_id", "signup_date", "region"], ["named 'Unnamed: 0', as pandas"]),
        (["customer_id", "signup_date", "region", "", ""], ["column 4, 5 of 5 has no name"]),
        (
            ["", "customer_id", "signup_date", "region", ""],
            ["the first column is named ''", "column 5 of 5 has no name"],
        ),
    ],
    ids=["pandas-index", "pandas-index-read-back", "trailing-delimiters", "both"],
)
def test_a_column_without_a_name_says_where_it_came_from(header: list[str], says: list[str]) -> None:
    with pytest.raises(LoadError) as info:
        _check_header(header, CUSTOMERS, Path("f.csv"), ",")
    message = str(info.value)
    assert all(s in message for s in says), message
    # Each unnamed column is explained once: not also an unknown or repeated column.
    assert "unknown columns" not in message
    assert "more than once" not in message


def test_case_mismatch_says_which_name_to_use() -> None:
    with pytest.raises(LoadError, match=r"'Customer_ID' should be 'customer_id'") as info:
        _check_header(["Customer_ID", "signup_date", "region"], CUSTOMERS, Path("f.csv"), ",")
    assert "missing required" not in str(info.value)


def test_duplicate_header_names_are_refused() -> None:
    with pytest.raises(LoadError, match="more than once: region"):
        _check_header(["customer_id", "signup_date", "region", "region"], CUSTOMERS, Path("f.csv"), ",")


def test_wrong_delimiter_is_recognised() -> None:
    with pytest.raises(LoadError, match=r"looks ';'-delimited.*--delimiter ';'"):
        _check_header(["customer_id;signup_date;region"], CUSTOMERS, Path("f.csv"), ",")


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    return path


def test_records_report_line_numbers_across_quoted_newlines(tmp_path: Path) -> None:
    path = _write(tmp_path, b'a,b\n1,"two\nlines"\n3,x\n')
    recs = list(_records(path, ",", 2, 100))
    assert [(r.line_no, r.fields, r.problem) for r in recs] == [
        (1, ["a", "b"], None),
        (2, ["1", "two\nlines"], None),
        (4, ["3", "x"], None),
    ]
    assert recs[1].raw == '1,"two\nlines"\n'


def test_records_flag_bad_utf8_and_keep_the_bytes_visible(tmp_path: Path) -> None:
    path = _write(tmp_path, b"a,b\n1,caf\xe9\n2,ok\n")
    recs = list(_records(path, ",", 2, 100))
    assert recs[1].problem == f"not valid UTF-8: byte 0xe9 at position 6 of line 2; {ENCODING_HINT}"
    assert recs[1].raw == "1,caf\\xe9\n"
    assert recs[2].problem is None
    # Read in the encoding it was written in, the line is what it says; a byte that
    # encoding leaves undefined (0x81 in cp1252) is rejected naming the encoding.
    path = _write(tmp_path, b"a,b\n1,caf\xe9\n2,\x81\n")
    recs = list(_records(path, ",", 2, 100, encoding="cp1252"))
    assert (recs[1].fields, recs[1].problem) == (["1", "caf\u00e9"], None)
    assert recs[2].problem == "not valid cp1252: byte 0x81 at position 3 of line 3"


def test_only_encodings_that_write_ascii_as_ascii_are_read() -> None:
    named = [check_encoding(e) for e in ("UTF8", "latin-1", "Windows-1252", "utf-8-sig")]
    assert named == ["utf-8", "iso8859-1", "cp1252", "utf-8-sig"]
    with pytest.raises(ValueError, match="unknown encoding 'klingon'"):
        check_encoding("klingon")
    for wide in ("utf-16", "utf-32-le"):
        with pytest.raises(ValueError, match="does not write ASCII as ASCII"):
            check_encoding(wide)


def test_records_flag_wrong_field_counts_nul_bytes_and_huge_fields(tmp_path: Path) -> None:
    path = _write(tmp_path, b"a,b\n1\n1,2,3\n1,a\x00b\n1," + b"x" * 101 + b"\n\n5,6\n")
    problems = [(r.line_no, r.problem) for r in _records(path, ",", 2, 100)][1:]
    assert problems == [
        (2, "expected 2 fields, found 1"),
        (3, "expected 2 fields, found 3"),
        (4, "contains a NUL byte, which Postgres text cannot store"),
        (5, "field 2 is 101 characters; the limit is 100"),
        (7, None),
    ]


def test_a_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\xef\xbb\xbfa,b\n1,2\n")
    assert next(_records(path, ",", None, 100)).fields == ["a", "b"]


def test_malformed_quoting_is_rejected_and_parsing_continues(tmp_path: Path) -> None:
    path = _write(tmp_path, b'a,b\n1,"x"y\n2,z\n')
    recs = list(_records(path, ",", 2, 100))[1:]
    assert recs[0].problem is not None
    assert recs[0].problem.startswith("malformed CSV")
    assert (recs[-1].fields, recs[-1].problem) == (["2", "z"], None)


def test_a_record_over_the_byte_limit_is_skipped_unread_and_parsing_goes_on(tmp_path: Path) -> None:
    path = _write(tmp_path, b"a,b\n1,2\n3," + b"z" * 5000 + b"\n4,5\n")
    recs = list(_records(path, ",", 2, 10_000, max_record_bytes=1000))[1:]
    assert [(r.line_no, r.fields if r.problem is None else None) for r in recs] == [
        (2, ["1", "2"]),
        (3, None),
        (4, ["4", "5"]),
    ]
    assert recs[1].problem is not None
    assert recs[1].problem.startswith("record is 5,003 bytes; the limit is 1,000")
    # Only the beginning of the skipped line is kept for raw.load_rejects.
    assert len(recs[1].raw) < 1100
    assert recs[1].raw.endswith("[... 5,003 bytes in all]\n")


def test_a_quoted_field_over_many_lines_cannot_grow_past_the_limit(tmp_path: Path) -> None:
    path = _write(tmp_path, b'a,b\n1,"' + b"short line\n" * 500 + b'"\n')
    recs = list(_records(path, ",", 2, 10_000, max_record_bytes=1000))[1:]
    assert recs[0].problem is not None
    assert recs[0].problem.startswith("record is ")
