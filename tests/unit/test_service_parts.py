"""The service's parts that need no database: the streamed upload, the event stream,
the override checks, the loopback rule and the token setting."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from storecast.database.overrides import Override, OverrideError, check_override
from storecast.scoring.pipeline import STEPS
from storecast.service.app import is_loopback
from storecast.service.jobs import Job
from storecast.service.uploads import ReceivedFile, UploadError, receive_csv
from storecast.settings import service_token

BOUNDARY = "----storecastboundary"
CSV = b"order_id,store_id\n1,2\n3,4\n"


def _multipart(fields: list[tuple[str, str | None, bytes]]) -> bytes:
    parts = []
    for name, filename, content in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        parts.append(
            f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\nContent-Type: text/csv\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def _chunks(body: bytes, size: int = 7) -> AsyncIterator[bytes]:
    # Small chunks, so that boundaries and headers are split across them.
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _receive(body: bytes, content_type: str, folder: Path, limit: int = 1_000_000) -> ReceivedFile:
    return asyncio.run(receive_csv(_chunks(body), content_type, "orders", limit, folder))


def test_the_file_field_of_a_multipart_body_is_written_to_disk_as_sent(tmp_path: Path) -> None:
    body = _multipart([("note", None, b"ignored"), ("file", "../../etc/orders.csv", CSV)])
    received = _receive(body, f"multipart/form-data; boundary={BOUNDARY}", tmp_path)
    assert received.path.read_bytes() == CSV
    assert received.size == len(CSV)
    # The client's name, without its path: nothing is written outside the folder.
    assert received.path.parent == tmp_path
    assert received.path.name == "orders.csv"
    assert received.filename == "../../etc/orders.csv"


def test_a_bare_csv_body_is_accepted(tmp_path: Path) -> None:
    received = _receive(CSV, "text/csv; charset=utf-8", tmp_path)
    assert received.path.read_bytes() == CSV


@pytest.mark.parametrize(
    ("body", "content_type", "status", "said"),
    [
        (CSV * 100, "text/csv", 413, "service_upload_max_mb"),
        (
            _multipart([("file", "a.csv", CSV * 100)]),
            f"multipart/form-data; boundary={BOUNDARY}",
            413,
            "limit",
        ),
        (b'{"a": 1}', "application/json", 415, "text/csv"),
        (b"", "", 415, "without a Content-Type"),
        (_multipart([("data", "a.csv", CSV)]), f"multipart/form-data; boundary={BOUNDARY}", 400, "'file'"),
        (
            _multipart([("file", "a.csv", b"PK\x03\x04\x00\x00")]),
            f"multipart/form-data; boundary={BOUNDARY}",
            415,
            "binary",
        ),
        (_multipart([("file", "a.csv", b"")]), f"multipart/form-data; boundary={BOUNDARY}", 400, "empty"),
        (CSV, "multipart/form-data", 400, "boundary"),
    ],
)
def test_bad_bodies_are_refused_with_a_status_and_a_reason(
    body: bytes, content_type: str, status: int, said: str, tmp_path: Path
) -> None:
    with pytest.raises(UploadError, match=said) as caught:
        _receive(body, content_type, tmp_path, limit=500)
    assert caught.value.status == status


def test_a_job_streams_its_events_to_every_listener_from_the_start() -> None:
    job = Job(run_id=7, as_of=None)
    job.progress("accepted")
    job.started("train")
    heard: list[list[str]] = [[], []]

    def listen(into: list[str]) -> None:
        number = 0
        while True:
            events = job.events_after(number, timeout=5)
            into.extend(e.kind for e in events)
            number += len(events)
            if job.finished and number == len(job.events):
                return

    listeners = [threading.Thread(target=listen, args=(h,)) for h in heard]
    for listener in listeners:
        listener.start()
    job.emit("result", {"run_id": 7, "as_of": date(2026, 11, 23)})
    for listener in listeners:
        listener.join(10)
    assert heard == [["progress", "progress", "result"]] * 2
    assert job.status == "succeeded"
    encoded = job.events[1].encode().decode()
    assert encoded.startswith("id: 1\nevent: progress\ndata: ")
    assert encoded.endswith("\n\n")
    data = json.loads(encoded.split("data: ", 1)[1])
    assert data == {
        "step": "train",
        "done": STEPS.index("train"),
        "total": len(STEPS),
        "message": "train started",
    }
    assert json.loads(job.events[2].encode().decode().split("data: ", 1)[1])["as_of"] == "2026-11-23"


def test_a_failed_job_ends_with_its_error() -> None:
    job = Job(run_id=8, as_of=None)
    job.emit("error", {"step": "train", "message": "TrainingError: no rows"})
    assert job.finished
    assert job.status == "failed"
    assert job.events_after(0, timeout=0)[-1].kind == "error"


@pytest.mark.parametrize(
    ("override", "said"),
    [
        (Override("demand", 1, "ana", "event", 3.0, period_start=date(2026, 1, 5)), "needs store_id"),
        (Override("demand", 1, "ana", "event", 3.0, store_id=2), "needs period_start"),
        (Override("sell_through", 1, "ana", "sold out", 1.0, store_id=2), "store_id is not part"),
        (Override("sell_through", 1, "ana", "sold out", 0.5), "1 .sells through. or 0"),
        (Override("demand", 1, "ana", "event", -1.0, store_id=2, period_start=date(2026, 1, 5)), "0 or more"),
        (Override("sell_through", 1, " ", "sold out", 1.0), "author must not be empty"),
        (Override("sell_through", 1, "ana", "", None), "reason must not be empty"),
    ],
)
def test_an_override_that_does_not_fit_its_kind_names_the_field(override: Override, said: str) -> None:
    with pytest.raises(OverrideError, match=said):
        check_override(override)


def test_well_formed_overrides_pass_including_a_withdrawal() -> None:
    check_override(Override("sell_through", 1, "ana", "sold out", 1.0))
    check_override(Override("sell_through", 1, "ana", "mistake", None))
    check_override(Override("demand", 1, "ana", "event", 120.0, store_id=2, period_start=date(2026, 1, 5)))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("shop.example", False),
        ("10.1.2.3", False),
    ],
)
def test_only_loopback_hosts_count_as_local(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_token_comes_from_the_environment_and_blank_means_none() -> None:
    assert service_token({"STORECAST_SERVICE_TOKEN": " s3cret "}) == "s3cret"
    assert service_token({"STORECAST_SERVICE_TOKEN": "  "}) is None
    assert service_token({}) is None
