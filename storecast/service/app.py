"""The HTTP service (``storecast serve``): uploads, retraining with live progress,
filtered forecasts with their inventory plan, and overrides, over the same settings
and database as the command line.

Each endpoint delegates to the library function the CLI uses (the loader, the daily
run, the marts); this module only maps HTTP onto them. Writes by users (uploads and
overrides) run as the database role ``storecast_service``, which may insert and
update raw rows and nothing else; the retrain runs the pipeline as the service's
own login. When a token is set, every write endpoint requires it; the service
refuses to listen beyond loopback without one (:func:`serve`).
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict
from datetime import date, datetime
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storecast.config import ProjectConfig, load_config
from storecast.database.load_catalogue import LoadError, loadable_tables, table_info
from storecast.database.loader import load_csv
from storecast.database.overrides import OverrideError, list_overrides, override_from, record_override
from storecast.database.schema import ensure_schema
from storecast.db import Conn
from storecast.scoring.pipeline import check_models
from storecast.service import ServiceError
from storecast.service.forecast import ForecastQuery, forecast
from storecast.service.jobs import BusyError, Job, Jobs
from storecast.service.uploads import UploadError, private_folder, receive_csv
from storecast.settings import Settings
from storecast.training.spec import model_specs

#: The role user writes run as (database/init.sql grants it insert and update on raw).
SERVICE_ROLE = "storecast_service"
#: Seconds between keep-alive comments on an idle event stream (proxies drop silent ones).
KEEP_ALIVE_SECONDS = 15.0
#: The largest JSON body an endpoint reads (filters and overrides are small).
MAX_JSON_BYTES = 1_048_576
#: Upload modes, as the loader names them.
UploadMode = Literal["append", "upsert"]


class RetrainRequest(BaseModel):
    """Body of ``POST /retrain``; every field is optional."""

    model_config = ConfigDict(extra="forbid")

    as_of: date | None = Field(None, description="Scoring date (default: the day after the latest order).")
    models: list[str] | None = Field(
        None,
        description="Models to retrain whether due or not (default: every model); the others keep their schedule.",
    )


class OverrideRequest(BaseModel):
    """Body of ``POST /overrides``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sell_through", "demand"] = Field(
        description="sell_through: will the item sell through (value 1 or 0); demand: units in a period."
    )
    product_id: int | None = Field(None, description="Product; or name it by product_code.")
    product_code: str | None = Field(
        None, description="The product as the files write it (its code under the setting coded_keys)."
    )
    store_id: int | None = Field(None, description="Store, for a demand override; or name it by store_code.")
    store_code: str | None = Field(None, description="The store as the files write it.")
    period_start: date | None = Field(None, description="A day of the demand period, for a demand override.")
    value: float | None = Field(
        description="1 or 0 (sell_through), units (demand); null withdraws the override."
    )
    author: str = Field(min_length=1, description="Who records it.")
    reason: str = Field(min_length=1, description="Why.")


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def _as_service_role(conn: Conn) -> Iterator[Conn]:
    conn.execute(sql.SQL("set role {}").format(sql.Identifier(SERVICE_ROLE)))
    try:
        yield conn
    finally:
        if not conn.closed:
            conn.execute("reset role")


Body = TypeVar("Body", bound=BaseModel)


async def _json_body(request: Request, model: type[Body]) -> Body:
    """The body as ``model``, whatever Content-Type the client sent: ``curl -d '{...}'``
    labels JSON as a form, and refusing it for that would help nobody. An empty body is ``{}``."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise HTTPException(413, f"a JSON body of more than {MAX_JSON_BYTES // 1024} KiB is not a query")
    try:
        return model.model_validate_json(raw.strip() or b"{}")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def _json_schema(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` for an endpoint that reads ``model`` itself (:func:`_json_body`)."""
    return {
        "requestBody": {
            "required": required,
            "content": {
                "application/json": {
                    "schema": model.model_json_schema(ref_template="#/components/schemas/{model}")
                }
            },
        }
    }


def _sse(job: Job) -> StreamingResponse:
    async def stream() -> AsyncIterator[bytes]:
        number = 0
        while True:
            events = await run_in_threadpool(job.events_after, number, KEEP_ALIVE_SECONDS)
            if not events:
                yield b": keep-alive\n\n"
                continue
            for event in events:
                yield event.encode()
            number = events[-1].number + 1
            if job.finished and number >= len(job.events):
                return

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Storecast-Run": str(job.run_id)},
    )


def create_app(
    settings: Settings,
    config: Callable[[], ProjectConfig] = load_config,
    token: str | None = None,
    upload_folder: Path | None = None,
) -> FastAPI:
    """The service's ASGI application over ``settings``' database.

    ``config`` gives the project settings (read again for each run, so an edited
    storecast.yml applies to the next retrain); with ``token`` every write endpoint
    requires ``Authorization: Bearer <token>``. Uploads are written under
    ``upload_folder`` (default: the system's temporary folder) and removed after loading.
    """
    pool = ConnectionPool(
        settings.conninfo, min_size=1, max_size=8, kwargs={"autocommit": True}, open=False, name="storecast"
    )
    jobs = Jobs(settings, config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(pool.open, True, 30.0)
        with pool.connection() as conn:
            ensure_schema(conn)
            member = conn.execute("select pg_has_role(current_user, %s, 'member')", [SERVICE_ROLE]).fetchone()
            if not member or not member[0]:
                raise ServiceError(
                    f"the login the service connects as cannot act as {SERVICE_ROLE}: grant {SERVICE_ROLE} to it "
                    "(see the README's HTTP service section)"
                )
        yield
        pool.close()

    app = FastAPI(
        title="storecast",
        summary="Upload retail data, retrain with live progress, read forecasts and inventory plans, record overrides.",
        version="0.1.0",
        lifespan=lifespan,
    )

    def write_access(request: Request) -> None:
        """Every write endpoint: the token, when the service has one."""
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(
                401, "this endpoint needs the service token: Authorization: Bearer <STORECAST_SERVICE_TOKEN>"
            )

    writer = [Depends(write_access)]

    @app.exception_handler(BusyError)
    async def busy(_: Request, exc: BusyError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "running_run_id": exc.run_id}, status_code=409)

    @app.exception_handler(OverrideError)
    async def bad_override(_: Request, exc: OverrideError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return files("storecast.service").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/health", summary="Whether the service reaches its database")
    def health() -> dict[str, Any]:
        with pool.connection() as conn:
            row = conn.execute("select max(version) from raw.schema_versions").fetchone()
        running = jobs.running.run_id if jobs.running and not jobs.running.finished else None
        return {"status": "ok", "schema_version": row[0] if row else None, "running_run_id": running}

    @app.get("/uploads", summary="The raw tables a CSV can be loaded into, with their columns")
    def tables() -> dict[str, list[dict[str, Any]]]:
        with pool.connection() as conn:
            return {
                name: [
                    {"name": c.name, "type": c.type, "required": c.required}
                    for c in table_info(conn, name).columns
                ]
                for name in loadable_tables(conn)
            }

    @app.post(
        "/uploads/{table}",
        dependencies=writer,
        summary="Load a CSV file into a raw table",
        description=(
            "The body is multipart/form-data with the file in field `file` (`curl -F file=@orders.csv`), "
            "or the CSV itself as text/csv. It is streamed to disk within the limit `service_upload_max_mb`, "
            "then loaded in one transaction by the same loader as `storecast load`: rejected rows are kept in "
            "raw.load_rejects with their reason; with `all_or_nothing` one reject loads nothing. "
            "Keys named in the setting `coded_keys` are read as codes, as by `storecast load`."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                            "required": ["file"],
                        }
                    },
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def upload(
        request: Request,
        table: str,
        mode: UploadMode = "append",
        all_or_nothing: bool = False,
        delimiter: Annotated[str, Query(min_length=1, max_length=2)] = ",",
        date_format: str | None = None,
        decimal_comma: bool = False,
        thousands_comma: bool = False,
        encoding: str = "utf-8",
    ) -> JSONResponse:
        def check_table() -> None:
            with pool.connection() as conn:
                table_info(conn, table)

        try:
            await run_in_threadpool(check_table)
        except LoadError as exc:
            raise HTTPException(404, str(exc)) from None
        settings = config().values
        limit = int(float(settings["service_upload_max_mb"]) * 1_048_576)
        with private_folder(upload_folder) as folder:
            try:
                received = await receive_csv(
                    request.stream(), request.headers.get("content-type", ""), table, limit, Path(folder)
                )
            except UploadError as exc:
                raise HTTPException(exc.status, str(exc)) from None

            def load() -> Any:
                with pool.connection() as conn, _as_service_role(conn):
                    return load_csv(
                        conn,
                        table,
                        received.path,
                        mode=mode,
                        all_or_nothing=all_or_nothing,
                        delimiter=delimiter.replace("\\t", "\t"),
                        date_format=date_format,
                        decimal_comma=decimal_comma,
                        thousands_comma=thousands_comma,
                        coded_keys=settings["coded_keys"],
                        encoding=encoding,
                    )

            try:
                result = await run_in_threadpool(load)
            except LoadError as exc:
                raise HTTPException(422, f"{received.filename}: {exc}") from None
        body = asdict(result)
        body["first_rejects"] = [{"line": line, "reason": reason} for line, reason in result.first_rejects]
        body["filename"] = received.filename
        body["bytes"] = received.size
        if result.rows_rejected:
            body["all_rejects"] = f"select * from raw.load_rejects where load_id = {result.load_id}"
        status = 422 if result.status in ("rejected", "failed") else 200
        return JSONResponse(body, status_code=status)

    @app.post(
        "/retrain",
        dependencies=writer,
        summary="Build, train, score and build the marts, streaming progress",
        description=(
            "Starts the daily run as a background job and streams it as server-sent events: `progress` "
            "(step, done, total, message), then `result` (run id, champions and their metrics) or `error` "
            "(the step that failed). One run at a time: while one is going (here or from the command line) "
            "the answer is 409 with the running run's id. With `stream=false` the answer is 202 with the "
            "run id at once; follow it at /runs/{id}/events or /runs/{id}."
        ),
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "The run's events."},
            409: {"description": "A run is already going."},
        },
        openapi_extra=_json_schema(RetrainRequest, required=False),
    )
    async def retrain(http: Request, stream: bool = True) -> Any:
        request = await _json_body(http, RetrainRequest)
        config_now = await run_in_threadpool(config)
        if request.models is not None:
            try:
                check_models(model_specs(config_now.values), request.models)
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from None
        job = await run_in_threadpool(
            jobs.start, request.as_of, True if request.models is None else request.models
        )
        if not stream:
            return JSONResponse(
                {"run_id": job.run_id, "events": f"/runs/{job.run_id}/events"}, status_code=202
            )
        return _sse(job)

    @app.get("/runs/{run_id}", summary="A run: its steps as logged, and its result when this service ran it")
    def run(run_id: int) -> dict[str, Any]:
        with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            steps = cur.execute(
                """
                select step, status, as_of_date, started_at, finished_at,
                       extract(epoch from finished_at - started_at)::float8 as seconds, rows, counters, message
                from ml.pipeline_runs where run_id = %s order by started_at
                """,
                [run_id],
            ).fetchall()
        job = jobs.get(run_id)
        if not steps and job is None:
            raise HTTPException(404, f"no run {run_id}; `storecast runs` lists the recent ones")
        statuses = {s["status"] for s in steps}
        status = job.status if job else ("failed" if statuses & {"failed", "abandoned"} else "succeeded")
        if job is None and "running" in statuses:
            status = "running"
        last = job.events[-1] if job and job.finished else None
        return {
            "run_id": run_id,
            "status": status,
            "steps": steps,
            "result": last.data if last and last.kind == "result" else None,
            "error": last.data if last and last.kind == "error" else None,
        }

    @app.get(
        "/runs/{run_id}/events",
        summary="Follow a run this service started, from its first event",
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    def run_events(run_id: int) -> StreamingResponse:
        job = jobs.get(run_id)
        if job is None:
            raise HTTPException(404, f"run {run_id} was not started by this service (see GET /runs/{run_id})")
        return _sse(job)

    @app.post(
        "/forecast",
        summary="Forecast and inventory plan per product x store, filtered",
        openapi_extra=_json_schema(ForecastQuery, required=False),
    )
    async def forecast_endpoint(request: Request) -> Response:
        query = await _json_body(request, ForecastQuery)

        def read() -> str:
            with pool.connection() as conn:
                return forecast(conn, query)

        return Response(await run_in_threadpool(read), media_type="application/json")

    @app.get("/overrides", summary="Overrides with their history, newest first")
    def overrides(
        kind: Literal["sell_through", "demand"] | None = None,
        product_id: int | None = None,
        store_id: int | None = None,
        since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    ) -> list[dict[str, Any]]:
        with pool.connection() as conn:
            return list_overrides(conn, kind, product_id, store_id, since, limit)

    @app.post(
        "/overrides",
        dependencies=writer,
        status_code=201,
        summary="Record an override of a label or a projection",
        openapi_extra=_json_schema(OverrideRequest),
        description=(
            "Kept with history in raw.overrides (the latest per key applies, a null value withdraws it). "
            "The next build applies it: a sell_through override is the item's label, a demand override the "
            "period's units (and, for a period ahead, the forecast the inventory plan uses); the next "
            "training reads the overridden labels and records how many in ml.model_versions.overridden_labels."
        ),
    )
    async def add_override(request: Request) -> dict[str, Any]:
        body = await _json_body(request, OverrideRequest)

        def record() -> dict[str, Any]:
            with pool.connection() as conn, _as_service_role(conn):
                return record_override(conn, override_from(conn, body.model_dump()))

        return await run_in_threadpool(record)

    app.state.jobs = jobs
    return app


@contextmanager
def serving(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port of ``host`` in a background thread, for the
    block; yields its base URL (for tests and benchmarks, which drive it over loopback)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive():
            raise ServiceError("the service stopped while starting (see the log above)")
        if time.monotonic() > deadline:
            raise ServiceError("the service did not start within 60 s")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    config: Callable[[], ProjectConfig] = load_config,
) -> None:
    """Run the service with uvicorn until interrupted; refuses a non-loopback ``host``
    without a ``token``."""
    import uvicorn

    if not is_loopback(host) and not token:
        raise ServiceError(
            f"--host {host} exposes the service beyond this machine: set STORECAST_SERVICE_TOKEN first "
            "(every write then needs Authorization: Bearer <token>)"
        )
    uvicorn.run(create_app(settings, config, token), host=host, port=port, log_level="info")
