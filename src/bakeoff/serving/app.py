"""The HTTP service: `POST /v1/classify`, `GET /healthz`, `GET /metrics`, over one loaded candidate.

Every error is JSON `{"error": {"status", "message"}}`: 401 without the API key (when BAKEOFF_API_KEY is
set), 413 for a body or a text count past the limits, 415 for a POST that is not `application/json`, 422
for malformed JSON, wrong types or a text past the character limit, 404/405 for wrong routes. The body is
read in chunks and refused as soon as it passes the byte limit, whatever Content-Length claims.

Why 415: a browser sends a cross-origin `text/plain` (or form) POST without asking first (no CORS
preflight), so any web page a user opens could drive a server on their 127.0.0.1. A JSON POST from
another origin needs a preflight, which this server never grants.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from dataclasses import asdict, dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bakeoff.serving.batcher import BatchSettings, MicroBatcher
from bakeoff.serving.predictor import ServedModel


@dataclass(frozen=True)
class RequestLimits:
    """What one request may carry."""

    max_body_bytes: int = 1_000_000
    max_texts: int = 64
    max_chars: int = 4_000  # per text


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    texts: list[str] = Field(min_length=1, description="Texts to classify.")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


def require_json(request: Request) -> None:
    """415 unless the body is declared JSON (`application/json`, any parameters such as charset)."""
    declared = request.headers.get("content-type", "")
    if declared.split(";", 1)[0].strip().lower() != "application/json":
        shown = f"`{declared[:80]}`" if declared else "none"
        raise ApiError(415, f"content-type {shown}: send the body as JSON with `Content-Type: application/json`")


class JsonBodyRoute(APIRoute):
    """A route that refuses, before its handler runs, a POST/PUT/PATCH whose body is not declared JSON.
    The app's route class, so every body-taking endpoint gets the check, one added later included."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                require_json(request)
            return await handler(request)

        return checked


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status)


class ServingMetrics:
    """Prometheus metrics in a registry of their own (one per app, so tests can build several)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "bakeoff_request_latency_seconds",
            "Time from request received to answer, classify requests.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "bakeoff_batch_size_texts",
            "Texts scored together in one model call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "bakeoff_queue_depth_requests", "Requests waiting for a batch.", registry=self.registry
        )
        self.abstentions = Counter(
            "bakeoff_abstentions", "Predictions below the abstention threshold.", registry=self.registry
        )
        self.requests = Counter(
            "bakeoff_requests", "Classify requests by HTTP status.", ["status"], registry=self.registry
        )


def create_app(
    model: ServedModel,
    limits: RequestLimits = RequestLimits(),
    batching: BatchSettings = BatchSettings(),
    api_key: str | None = None,
) -> FastAPI:
    metrics = ServingMetrics()
    batcher_box: dict[str, MicroBatcher] = {}
    lifespan = _lifespan(model, batching, metrics, batcher_box)
    app = FastAPI(title="bakeoff classifier", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.router.route_class = JsonBodyRoute  # before any route is added: routes take the class when declared
    _add_error_handlers(app, metrics)
    check_key = _key_check(api_key)

    @app.get("/healthz")
    async def healthz() -> dict:
        batcher = batcher_box.get("batcher")
        return {
            "status": "ok",
            "model": model.info(),
            "batching": asdict(batching),
            "limits": asdict(limits),
            "queue_depth": batcher.depth if batcher else 0,
        }

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        check_key(request)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/classify")
    async def classify(request: Request) -> JSONResponse:
        started = time.perf_counter()
        check_key(request)
        body = await _read_limited(request, limits.max_body_bytes)
        parsed = _parse(body)
        _check_texts(parsed, limits)
        probs = await batcher_box["batcher"].submit(list(parsed.texts))
        predictions = _predictions(model, probs)
        metrics.abstentions.inc(sum(p["abstain"] for p in predictions))
        metrics.requests.labels("200").inc()
        metrics.latency.observe(time.perf_counter() - started)
        return JSONResponse({"predictions": predictions})

    return app


def _lifespan(model: ServedModel, batching: BatchSettings, metrics: ServingMetrics, batcher_box: dict):
    """The app's lifespan: the micro-batcher (kept in `batcher_box`) runs from startup to shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher = MicroBatcher(
            model.predict, batching, on_batch=metrics.batch_size.observe, on_queue=metrics.queue_depth.set
        )
        batcher_box["batcher"] = batcher
        task = asyncio.create_task(batcher.run())
        try:
            yield
        finally:  # uvicorn runs this after in-flight requests have finished (graceful shutdown)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            batcher.close()

    return lifespan


def _add_error_handlers(app: FastAPI, metrics: ServingMetrics) -> None:
    """Every error as JSON `{"error": {"status", "message"}}`; a refused classify request is counted."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        if request.url.path == "/v1/classify":
            metrics.requests.labels(str(exc.status)).inc()
        return _error(exc.status, exc.message)


def _key_check(api_key: str | None):
    """A check that refuses (401) a request without `api_key`; with no key set, every request passes."""

    def check_key(request: Request) -> None:
        if api_key is None:
            return
        given = (
            request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        )
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise ApiError(401, "missing or wrong API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`")

    return check_key


def _check_texts(parsed: ClassifyRequest, limits: RequestLimits) -> None:
    """413 for more texts than the limit, 422 for a text longer than the limit."""
    if len(parsed.texts) > limits.max_texts:
        raise ApiError(413, f"{len(parsed.texts)} texts in one request; the limit is {limits.max_texts} (--max-texts)")
    for i, text in enumerate(parsed.texts):
        if len(text) > limits.max_chars:
            raise ApiError(422, f"texts[{i}] has {len(text)} characters; the limit is {limits.max_chars} (--max-chars)")


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"body of {declared} bytes; the limit is {limit} bytes (--max-body-bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body over the limit of {limit} bytes (--max-body-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> ClassifyRequest:
    try:
        return ClassifyRequest.model_validate_json(body)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        hint = ' (expected {"texts": ["...", ...]})'
        raise ApiError(422, f"{where}: {first['msg']}{hint}") from None


def _predictions(model: ServedModel, probs) -> list[dict]:
    out = []
    for row in probs:
        best = int(row.argmax())
        top = float(row[best])
        out.append(
            {
                "label": model.labels[best],
                "probability": top,
                # The evaluation accepts an item when max probability >= threshold; the server abstains on the rest.
                "abstain": bool(model.threshold is not None and top < model.threshold),
                "probabilities": {label: float(p) for label, p in zip(model.labels, row)},
            }
        )
    return out
