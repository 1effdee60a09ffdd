"""The HTTP service, run for real: uvicorn on a loopback port, the session's embedded
Postgres, real dbt builds, training and scoring behind ``POST /retrain``, and the page
in a real headless browser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from storecast.config import load_config
from storecast.db import Conn, scalar
from storecast.scoring.families import FAMILIES
from storecast.scoring.pipeline import STEPS
from storecast.service import ServiceError
from storecast.service.app import create_app, serve, serving
from storecast.settings import Settings
from storecast.training.spec import model_specs
from storecast.training.train import TrainResult
from tests.integration.browser import chromium_path

pytestmark = pytest.mark.changes_trained_state

#: The upload limit of the module's service, in MiB (the setting service_upload_max_mb).
UPLOAD_LIMIT_MB = 1
#: The model the retrains here train (the others keep their champions), to stay quick.
RETRAINED = "sell_through"


@pytest.fixture(scope="module")
def service(
    pg_settings: Settings, trained: dict[str, TrainResult], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The service over the session database with every model trained, uploads limited to 1 MiB."""
    app = create_app(
        pg_settings,
        config=lambda: load_config([f"service_upload_max_mb={UPLOAD_LIMIT_MB}"]),
        upload_folder=tmp_path_factory.mktemp("uploads"),
    )
    with serving(app) as url:
        yield url


def new_orders_csv(conn: Conn, count: int, bad: bool = True) -> tuple[str, int]:
    """``count`` valid orders after the latest one (plus, with ``bad``, two that must be
    rejected: an unknown store and an unreadable time); returns the CSV and its first id."""
    first_id = scalar(conn, "select max(order_id) + 1 from raw.orders")
    customer, store, last = conn.execute(
        "select min(customer_id), min(store_id), max(ordered_at)::text from raw.orders"
    ).fetchone()  # type: ignore[misc]
    lines = ["order_id,customer_id,store_id,ordered_at,channel"]
    for n in range(count):
        lines.append(f"{first_id + n},{customer},{store},{last},store")
    if bad:
        lines.append(f"{first_id + count},{customer},999999,{last},store")
        lines.append(f"{first_id + count + 1},{customer},{store},yesterday at noon,store")
    return "\n".join(lines) + "\n", first_id


def events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Parse a ``text/event-stream`` into (event, data) pairs; comments are skipped."""
    kind, data = "message", ""
    for line in lines:
        if line == "":
            if data:
                yield kind, json.loads(data)
            kind, data = "message", ""
        elif line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            data += line[len("data: ") :]


@dataclass(frozen=True)
class Retrain:
    """What the module's retrain showed: its events, the refused second request, the overrides before it."""

    events: list[tuple[str, dict[str, Any]]]
    refused: httpx.Response
    item: int
    label_before: bool
    demand_key: tuple[int, int, date]
    versions_before: int


@pytest.fixture(scope="module")
def retrained(service: str, pg_settings: Settings) -> Retrain:
    """Overrides recorded, then ``POST /retrain`` streamed to its end, with a second
    request sent while it runs."""
    with psycopg.connect(pg_settings.conninfo, autocommit=True) as conn:
        # Earlier modules scored dates this data no longer has (the shared state reloads the
        # data, not the scores); the marts show the latest scored date, so start clean.
        conn.execute("truncate " + ", ".join(family.table for family in FAMILIES.values()))
        item, label = conn.execute(
            "select product_id, sold_through from features.item_features where sold_through is not null "
            "order by as_of_date desc, product_id limit 1"
        ).fetchone()  # type: ignore[misc]
        # A period a week after the latest as-of date: within the forecast of the date the
        # retrain scores, whichever recent date that is (earlier modules ran later days).
        product, store, target = conn.execute(
            "select product_id, store_id, as_of_date + 7 from features.demand_features "
            "where as_of_date = (select max(as_of_date) from features.demand_features) and horizon = 1 "
            "order by 1, 2 limit 1"
        ).fetchone()  # type: ignore[misc]
        versions = scalar(conn, "select count(*) from ml.model_versions where model_name = %s", [RETRAINED])
    with httpx.Client(base_url=service, timeout=600) as client:
        flipped = client.post(
            "/overrides",
            json={
                "kind": "sell_through",
                "product_id": item,
                "value": 0 if label else 1,
                "author": "test",
                "reason": "the orders undercount this item",
            },
        )
        assert flipped.status_code == 201, flipped.text
        # A period still ahead of the forecast: a projection the inventory plan must follow.
        projected = client.post(
            "/overrides",
            json={
                "kind": "demand",
                "product_id": product,
                "store_id": store,
                "period_start": target.isoformat(),
                "value": 500,
                "author": "test",
                "reason": "a promotion the data does not know about",
            },
        )
        assert projected.status_code == 201, projected.text
        seen: list[tuple[str, dict[str, Any]]] = []
        with client.stream("POST", "/retrain", content=json.dumps({"models": [RETRAINED]})) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            seen.append(next(events(lines)))
            refused = client.post("/retrain")
            seen.extend(events(lines))
    return Retrain(seen, refused, item, bool(label), (product, store, target), versions)


def test_an_upload_loads_its_rows_and_keeps_the_rejects_with_their_reasons(service: str, conn: Conn) -> None:
    body, first_id = new_orders_csv(conn, 3)
    response = httpx.post(f"{service}/uploads/orders", files={"file": ("orders.csv", body, "text/csv")})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["rows_in"], result["rows_loaded"], result["rows_rejected"]) == (5, 3, 2)
    assert result["status"] == "partial"
    assert result["filename"] == "orders.csv"
    reasons = [r["reason"] for r in result["first_rejects"]]
    assert any("store_id" in r and "999999" in r for r in reasons), reasons
    assert any("ordered_at" in r for r in reasons), reasons
    loaded = scalar(
        conn, "select count(*) from raw.orders where order_id between %s and %s", [first_id, first_id + 4]
    )
    assert loaded == 3
    kept = scalar(conn, "select count(*) from raw.load_rejects where load_id = %s", [result["load_id"]])
    assert kept == 2
    # The same rows again as a bare CSV body, upserted: nothing new, nothing lost.
    again = httpx.post(
        f"{service}/uploads/orders?mode=upsert", content=body, headers={"Content-Type": "text/csv"}
    )
    assert again.status_code == 200, again.text
    assert again.json()["rows_loaded"] == 3
    assert scalar(conn, "select count(*) from raw.orders where order_id >= %s", [first_id]) == 3


def test_an_upload_with_decimal_commas_loads_the_numbers_it_writes(service: str, conn: Conn) -> None:
    key = int(str(scalar(conn, "select coalesce(max(product_id), 0) + 1000 from raw.products")))
    body = (
        "product_id;title;brand;category;platform;list_price;unit_cost;launched_at;initial_stock\n"
        f"{key};Mug;Acme;kitchen;store;1.234,50;0,95;2024-01-01;10\n"
    )
    response = httpx.post(
        f"{service}/uploads/products?delimiter=;&decimal_comma=true",
        content=body,
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["rows_loaded"] == 1
    row = conn.execute(
        "select list_price::text, unit_cost::text from raw.products where product_id = %s", [key]
    ).fetchone()
    assert row == ("1234.50", "0.95")
    # A file Excel saved on Windows, named as what it is.
    windows = f"product_id,title,category,list_price\n{key + 1},Caf\u00e9 mug,kitchen,4.50\n".encode("cp1252")
    response = httpx.post(
        f"{service}/uploads/products?encoding=cp1252", content=windows, headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert scalar(conn, "select title from raw.products where product_id = %s", [key + 1]) == "Caf\u00e9 mug"


def test_bad_uploads_get_a_clear_4xx_and_load_nothing(service: str, conn: Conn, tmp_path: Path) -> None:
    before = scalar(conn, "select count(*) from raw.orders")
    body, _ = new_orders_csv(conn, 2)
    url = f"{service}/uploads"
    cases = {
        "unknown table": (
            httpx.post(f"{url}/no_such_table", files={"file": ("x.csv", body)}),
            404,
            "loadable",
        ),
        "binary file": (
            httpx.post(f"{url}/orders", files={"file": ("x.csv", b"\x00\x01PK\x03")}),
            415,
            "binary",
        ),
        "not a file": (httpx.post(f"{url}/orders", json={"order_id": 1}), 415, "multipart/form-data"),
        "no file field": (httpx.post(f"{url}/orders", files={"data": ("x.csv", body)}), 400, "'file'"),
        "empty file": (httpx.post(f"{url}/orders", files={"file": ("x.csv", b"")}), 400, "empty"),
        "too large": (
            httpx.post(f"{url}/orders", files={"file": ("x.csv", b"a,b\n" * (UPLOAD_LIMIT_MB * 300_000))}),
            413,
            "service_upload_max_mb",
        ),
        "wrong header": (
            httpx.post(f"{url}/orders", files={"file": ("x.csv", "id,when\n1,2026-01-01\n")}),
            422,
            "x.csv",
        ),
        "one bad row, all or nothing": (
            httpx.post(f"{url}/orders?all_or_nothing=true", files={"file": ("x.csv", body)}),
            422,
            "rejected",
        ),
        "unknown mode": (
            httpx.post(f"{url}/orders?mode=replace", files={"file": ("x.csv", body)}),
            422,
            "mode",
        ),
    }
    for name, (response, status, said) in cases.items():
        assert response.status_code == status, (name, response.text)
        assert said in response.text, (name, response.text)
    assert scalar(conn, "select count(*) from raw.orders") == before
    assert not list(tmp_path.parent.glob("uploads*/storecast-upload-*")), "an upload folder was left behind"


def test_retrain_streams_progress_to_a_result_and_refuses_a_second_run(
    retrained: Retrain, service: str
) -> None:
    kinds = [kind for kind, _ in retrained.events]
    assert kinds[-1] == "result", retrained.events[-3:]
    assert set(kinds[:-1]) == {"progress"}
    progress = [data for kind, data in retrained.events if kind == "progress"]
    assert all(p["total"] == len(STEPS) and 0 <= p["done"] < len(STEPS) for p in progress)
    started = [p["step"] for p in progress if p["message"] == f"{p['step']} started"]
    assert started == list(STEPS)
    assert any(RETRAINED in p["message"] for p in progress if p["step"] == "train")
    result = retrained.events[-1][1]
    assert set(result["trained"]) == {RETRAINED}
    assert {c["model"] for c in result["champions"]} == set(model_specs())
    assert all(c["metric"] and c["value"] is not None for c in result["champions"])
    assert result["scored"]["demand"] > 0
    # The second request, sent while the run went on, was refused naming it.
    assert retrained.refused.status_code == 409
    assert retrained.refused.json()["running_run_id"] == result["run_id"]
    run = httpx.get(f"{service}/runs/{result['run_id']}").json()
    assert run["status"] == "succeeded"
    assert run["result"]["run_id"] == result["run_id"]
    logged = [s["step"] for s in run["steps"]]
    assert {"build:features", "drift", "train", "monitor", "build:marts"} <= set(logged)
    assert any(s.startswith("score") for s in logged)
    assert httpx.get(f"{service}/runs/987654").status_code == 404
    unknown = httpx.post(f"{service}/retrain", json={"models": ["no_such_model"]})
    assert unknown.status_code == 422
    assert "no model called no_such_model" in unknown.text


def test_an_override_changes_the_labels_the_next_version_trains_on(retrained: Retrain, conn: Conn) -> None:
    label, overridden = conn.execute(
        "select sold_through, label_overridden from features.item_features where product_id = %s",
        [retrained.item],
    ).fetchone()  # type: ignore[misc]
    assert label is (not retrained.label_before)
    assert overridden is True
    versions = conn.execute(
        "select version, overridden_labels from ml.model_versions where model_name = %s order by version",
        [RETRAINED],
    ).fetchall()
    assert len(versions) == retrained.versions_before + 1
    assert versions[-1][1] == 1
    assert all(count == 0 for _, count in versions[:-1])


def test_the_forecast_filters_and_its_inventory_figures_are_the_marts(
    retrained: Retrain, service: str, conn: Conn
) -> None:
    category, region = conn.execute(
        "select category, store_region from marts.demand_forecast group by 1, 2 order by count(*) desc limit 1"
    ).fetchone()  # type: ignore[misc]
    # As in the README: curl -d sends no JSON Content-Type, and that is accepted.
    response = httpx.post(
        f"{service}/forecast",
        content=json.dumps({"category": category, "region": region, "horizon": 7}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    expected = scalar(
        conn,
        "select count(distinct (product_id, store_id)) from marts.demand_forecast where category = %s and store_region = %s",
        [category, region],
    )
    assert len(answer["series"]) == expected > 0
    plans = {
        (r[0], r[1]): r[2:]
        for r in conn.execute(
            "select product_id, store_id, reorder_point, safety_stock, min_level, max_level, on_hand, "
            "stock_status, suggested_order_units, warning from marts.inventory_plan"
        ).fetchall()
    }
    for series in answer["series"]:
        assert series["category"] == category
        assert series["store_region"] == region
        assert [p["horizon"] for p in series["forecast"]] == list(range(1, 8))
        inv = series["inventory"]
        plan = plans[series["product_id"], series["store_id"]]
        assert (
            inv["reorder_point"],
            inv["safety_stock"],
            inv["min_level"],
            inv["max_level"],
            inv["on_hand"],
            inv["stock_status"],
            inv["suggested_order_units"],
        ) == plan[:7]
        assert (plan[7] in series["warnings"]) if plan[7] else True
    # The demand override recorded before the retrain is the forecast of its period, and the plan used it.
    product, store, target = retrained.demand_key
    series = httpx.post(f"{service}/forecast", json={"product": [product], "store": store}).json()["series"]
    assert len(series) == 1
    period = next(p for p in series[0]["forecast"] if p["target_date"] == target.isoformat())
    assert period["forecast_units"] == 500
    assert period["is_overridden"] is True
    assert period["model_forecast_units"] != 500
    assert period["lower_80"] <= 500 <= period["upper_80"]
    assert any("override" in w for w in series[0]["warnings"])
    # The same series by the keys as the files write them (here numbers: codes without coded_keys).
    assert series[0]["product_code"] == str(product)
    by_code = httpx.post(
        f"{service}/forecast", json={"product_code": str(product), "store_code": [str(store)]}
    ).json()["series"]
    assert by_code == series
    # A barcode past integer's range is a key like any other: no series here, not an error.
    barcode = httpx.post(f"{service}/forecast", json={"product": 4006381333931})
    assert barcode.status_code == 200, barcode.text
    assert barcode.json()["series"] == []
    # Filters are bound parameters: SQL in a value is just a value that matches nothing.
    injected = httpx.post(f"{service}/forecast", json={"category": "x' or '1'='1"})
    assert injected.status_code == 200
    assert injected.json()["series"] == []
    # A price band around the median planned price: periods outside it are left out.
    median = scalar(
        conn, "select percentile_cont(0.5) within group (order by planned_price) from marts.demand_forecast"
    )
    band = {"min_price": 0.8 * median, "max_price": 1.25 * median, "horizon": 2}
    periods = [
        p for s in httpx.post(f"{service}/forecast", json=band).json()["series"] for p in s["forecast"]
    ]
    assert periods
    assert all(band["min_price"] <= p["planned_price"] <= band["max_price"] for p in periods)
    assert all(p["horizon"] <= 2 for p in periods)
    assert httpx.post(f"{service}/forecast", json={"categry": "pet"}).status_code == 422
    assert httpx.post(f"{service}/forecast", json={"horizon": 0}).status_code == 422
    limited = httpx.post(f"{service}/forecast", json={"limit": 2}).json()
    assert len(limited["series"]) == 2
    assert limited["truncated"] is True


def test_overrides_keep_their_history_and_bad_ones_say_which_field(service: str, conn: Conn) -> None:
    product = scalar(conn, "select min(product_id) from raw.products")
    key = {"kind": "sell_through", "product_id": product}
    first = httpx.post(f"{service}/overrides", json={**key, "value": 1, "author": "ana", "reason": "first"})
    withdrawn = httpx.post(
        f"{service}/overrides", json={**key, "value": None, "author": "bo", "reason": "wrong"}
    )
    assert first.status_code == withdrawn.status_code == 201
    history = httpx.get(f"{service}/overrides", params={"kind": "sell_through", "product_id": product}).json()
    assert [h["override_id"] for h in history[:2]] == [
        withdrawn.json()["override_id"],
        first.json()["override_id"],
    ]
    assert [h["in_force"] for h in history[:2]] == [False, False]
    assert history[0]["product_code"] == str(product)
    # A barcode-sized key (bigint) filters like any other: none recorded, no error.
    barcode = httpx.get(f"{service}/overrides", params={"product_id": 4006381333931})
    assert barcode.status_code == 200, barcode.text
    assert barcode.json() == []
    # A product named as the files write it: here a number, as no file wrote codes.
    by_code = httpx.post(
        f"{service}/overrides",
        json={
            "kind": "sell_through",
            "product_code": str(product),
            "value": 1,
            "author": "ana",
            "reason": "code",
        },
    )
    assert by_code.status_code == 201, by_code.text
    assert by_code.json()["product_id"] == product
    withdrawn_again = {**key, "value": None, "author": "ana", "reason": "only a check"}
    assert httpx.post(f"{service}/overrides", json=withdrawn_again).status_code == 201
    bad = {
        "an unknown product code": (
            {"kind": "sell_through", "product_code": "SKU-nope", "value": 1},
            "product_code: no code 'SKU-nope'",
        ),
        "a product and its code": ({**key, "product_code": str(product), "value": 1}, "not both"),
        "a demand override without its store": ({**key, "kind": "demand", "value": 3}, "store_id"),
        "a sell-through value of 7": ({**key, "value": 7}, "value"),
        "an unknown product": ({**key, "product_id": 987654321, "value": 1}, "product_id"),
        "an unknown barcode": ({**key, "product_id": 4006381333931, "value": 1}, "product_id"),
        "no reason": ({**key, "value": 1, "author": "ana"}, "reason"),
    }
    for name, (body, field) in bad.items():
        body.setdefault("author", "ana")
        if name != "no reason":
            body.setdefault("reason", "test")
        response = httpx.post(f"{service}/overrides", json=body)
        assert response.status_code == 422, (name, response.text)
        assert field in response.text, (name, response.text)


def test_write_endpoints_need_the_token_when_one_is_set(pg_settings: Settings) -> None:
    with serving(create_app(pg_settings, token="s3cret")) as url:
        body = {"kind": "sell_through", "product_id": 1, "value": 1, "author": "x", "reason": "y"}
        assert httpx.post(f"{url}/overrides", json=body).status_code == 401
        wrong = httpx.post(f"{url}/overrides", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert httpx.post(f"{url}/retrain").status_code == 401
        assert httpx.post(f"{url}/uploads/orders", files={"file": ("x.csv", "a\n")}).status_code == 401
        right = httpx.post(f"{url}/overrides", json=body, headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 201, right.text
        # Reading needs no token.
        assert httpx.post(f"{url}/forecast", json={"limit": 1}).status_code == 200
        schema = httpx.get(f"{url}/openapi.json").json()
        assert {"/uploads/{table}", "/retrain", "/runs/{run_id}", "/forecast", "/overrides"} <= set(
            schema["paths"]
        )
    with pytest.raises(ServiceError, match="STORECAST_SERVICE_TOKEN"):
        serve(pg_settings, host="0.0.0.0", port=0, token=None)


def test_the_service_role_may_add_raw_rows_but_not_delete_or_alter_them(conn: Conn) -> None:
    conn.execute("set role storecast_service")
    try:
        for statement in (
            "delete from raw.orders where false",
            "truncate raw.overrides",
            "update raw.overrides set value = 0 where false",
            "alter table raw.orders add column x int",
            "create table raw.mine (x int)",
            "update ml.model_versions set status = status where false",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    finally:
        conn.execute("reset role")


def test_the_page_uploads_retrains_and_shows_the_result_in_a_real_browser(
    retrained: Retrain, service: str, conn: Conn, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    body, first_id = new_orders_csv(conn, 2, bad=False)
    upload = tmp_path / "new_orders.csv"
    upload.write_text(body)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(service)
        page.wait_for_function("document.querySelectorAll('#upload-table option').length > 0")
        page.select_option("#upload-table", "orders")
        page.set_input_files("#upload-file", str(upload))
        page.fill("#retrain-models", RETRAINED)
        page.click("#upload-button")
        page.wait_for_selector("#upload-summary", timeout=60_000)
        summary = page.inner_text("#upload-summary")
        page.wait_for_selector("#progress-log li", timeout=60_000)
        page.wait_for_selector("#champions tbody tr", timeout=600_000)
        champions = page.locator("#champions tbody tr").count()
        page.wait_for_selector("#forecast-table tbody tr", timeout=60_000)
        page.wait_for_selector("#forecast-chart", timeout=60_000)
        chart = page.locator("#forecast-chart").bounding_box()
        log = page.locator("#progress-log li").all_inner_texts()
        # An override names its product as the files write it; an empty value records a
        # withdrawal, which changes no label of the shared state.
        product = str(scalar(conn, "select min(product_id) from raw.products"))
        page.select_option("#o-kind", "sell_through")
        page.fill("#o-product", product)
        page.fill("#o-author", "ana")
        page.fill("#o-reason", "a check from the browser")
        page.click("#override-form button[type=submit]")
        page.wait_for_selector("#override-result .ok", timeout=30_000)
        page.wait_for_function(
            "document.querySelector('#override-list tbody tr')?.innerText.includes('a check from the browser')"
        )
        listed = page.locator("#override-list tbody tr").first.inner_text()
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()
    assert errors == []
    assert f"sell_through\t{product}\t" in listed
    assert "2 of 2 rows" in summary
    assert champions == len(model_specs())
    assert any("[train]" in line for line in log), log
    assert any("finished" in line for line in log), log
    assert chart is not None
    assert chart["width"] > 0
    assert chart["height"] > 0
    assert scalar(conn, "select count(*) from raw.orders where order_id >= %s", [first_id]) == 2
    assert (tmp_path / "page.png").stat().st_size > 10_000
