"""The HTTP layer: request/response schemas, auth, limits and error mapping. No ML here.

Paths (stable; other checks call them):
  GET /healthz · GET /metrics · POST /v1/tasks · GET /v1/tasks · GET/DELETE /v1/tasks/{name}
  POST /v1/tasks/{name}/examples · POST /v1/tasks/{name}/predict · POST /v1/predict
  POST /v1/groups: several tasks trained together (one multi-task model), stored as ordinary tasks
  /v1/indexes/...: search indexes on the same backbone (``index_routes.py``)
Write endpoints need ``Authorization: Bearer <token>``; reads and predictions do not.
"""

from __future__ import annotations

import secrets
import sys
import time
from contextlib import asynccontextmanager
from typing import Annotated, Callable, Union

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field, StrictInt, model_validator

from anytask.core.errors import AnytaskError
from anytask.apps.serve.service import TaskService
from anytask.apps.serve.index_routes import index_router
from anytask.apps.serve.schemas import Strict, Text
from anytask.apps.serve.index_store import IndexExists, IndexNotFound
from anytask.apps.serve.store import HeadUnavailable, TaskExists, TaskNotFound

# true/false are not labels; a number is a score head's target (a class name, as text, for the other heads)
Label = Union[Annotated[str, Field(min_length=1, strict=True)], StrictInt,
              Annotated[float, Field(strict=True, allow_inf_nan=False)]]


class Example(Strict):
    text: Text
    label: Label


class CreateTask(Strict):
    name: str = Field(description="1-64 letters, digits, '_', '-', '.'", examples=["sentiment"])
    examples: list[Example] = Field(default_factory=list, description="labelled examples (or labels, for zero_shot)")
    labels: list[Label] | None = Field(default=None, min_length=2,
                                       description="label names: a zero_shot task with no examples needed")

    @model_validator(mode="after")
    def _examples_or_labels(self):
        if not self.examples and self.labels is None and self.head != "anchored":  # anchors alone score zero-shot
            raise ValueError("examples is empty: send labelled examples, or labels (label names) for a zero-shot task "
                             "(or head anchored with params.groups: zero-shot scoring)")
        return self
    head: str | None = Field(default=None, description="registered head name; default: the service default")
    params: dict | None = Field(default=None, description="head parameters")


class CreateGroup(Strict):
    name: str = Field(description="the group's name (recorded in each task's head_params)", examples=["reviews"])
    tasks: dict[str, list[Example]] = Field(min_length=2, description="task name -> its labelled examples")
    method: str = Field(default="mmoe", description="registered multi-task method (anytask list): mmoe, ple, dtrn, "
                        "taskexpert, router, shared_bottom, independent")
    params: dict | None = Field(default=None, description="the method's parameters")


class AddExamples(Strict):
    examples: list[Example] = Field(min_length=1)


class PredictTexts(Strict):
    texts: list[Text] = Field(min_length=1)
    top_k: int | None = Field(default=None, ge=1, description="keep only the k most probable classes per text")


class PredictMany(Strict):
    tasks: list[str] = Field(min_length=1)
    texts: list[Text] = Field(min_length=1)
    top_k: int | None = Field(default=None, ge=1, description="keep only the k most probable classes per text")


class Prediction(BaseModel):
    label: str
    probabilities: dict[str, float]


class ScorePrediction(BaseModel):
    score: float = Field(description="a score head's number for the text, in its targets' units")


class Predictions(BaseModel):
    predictions: list[Union[Prediction, ScorePrediction]]


class ManyPredictions(BaseModel):
    results: dict[str, Predictions]


class TaskOut(BaseModel):
    name: str
    head: str
    head_params: dict
    backbone: str
    classes: list[str]
    n_examples: int
    version: int
    created: float
    updated: float


class TaskList(BaseModel):
    tasks: list[TaskOut]


class GroupOut(BaseModel):
    name: str
    method: str
    tasks: list[TaskOut]


class Error(BaseModel):
    detail: str


ERRORS = {400: {"model": Error}, 401: {"model": Error}, 403: {"model": Error}, 404: {"model": Error},
          409: {"model": Error}, 413: {"model": Error}, 422: {"model": Error}}


class BodyLimit:
    """Pure ASGI middleware: refuse bodies over the limit (by header, and while streaming) and
    count requests and their time per route and status for ``/metrics``."""

    def __init__(self, app, max_bytes: int, metrics: "Metrics") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [0]

        async def send_counted(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._limited(scope, receive, send_counted)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"  # bounded label sets: a
            self.metrics.observe(method, route, status[0], time.perf_counter() - start)

    async def _limited(self, scope, receive, send):
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await _too_large(self.max_bytes, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(self.max_bytes, send)


class _BodyTooLarge(Exception):
    pass


async def _too_large(limit: int, send) -> None:
    body = JSONResponse({"detail": f"request body is larger than {limit} bytes; split it into smaller requests"},
                        status_code=413)
    await send({"type": "http.response.start", "status": 413, "headers": body.raw_headers})
    await send({"type": "http.response.body", "body": body.body})


def create_app(service: TaskService, *, token: str | None, read_only: bool = False,
               log: Callable[[str], None] | None = None, loopback_only: bool = False,
               log_json: bool = False) -> FastAPI:
    """The FastAPI app over ``service``; ``log`` (if given) receives one line per request.
    ``loopback_only`` (dev mode, no token) refuses requests whose Host or Origin is not a loopback name,
    so a web page the operator visits cannot write through DNS rebinding."""
    metrics = Metrics(service)

    @asynccontextmanager
    async def lifespan(app):
        await service.batcher.start()
        yield
        await service.batcher.stop()
        service.store.close()  # releases the home's writer lock for the next process

    app = FastAPI(title="anytask", version="1", lifespan=lifespan,
                  description="Many tasks on one frozen backbone: one encoder pass per input.")

    def require_writer(authorization: Annotated[str | None, Header()] = None) -> None:
        if read_only:
            raise _HTTP(403, "this server is read-only; restart it with a token to allow changes")
        if token is None:  # local-dev mode, loopback only
            return
        if not authorization or not authorization.startswith("Bearer "):
            raise _HTTP(401, "missing bearer token: send 'Authorization: Bearer <token>'")
        if not secrets.compare_digest(authorization[7:].encode(), token.encode()):
            raise _HTTP(403, "wrong token")

    writer = [Depends(require_writer)]

    @app.exception_handler(_HTTP)
    async def _http(request: Request, exc: _HTTP):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(AnytaskError)
    async def _anytask(request: Request, exc: AnytaskError):
        status = (404 if isinstance(exc, (TaskNotFound, IndexNotFound)) else
                  409 if isinstance(exc, (TaskExists, IndexExists)) else 400)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(HeadUnavailable)
    async def _unavailable(request: Request, exc: HeadUnavailable):
        # the detail names server paths: it goes to the operator's log, the caller gets an id to quote
        error_id = secrets.token_hex(4)
        print(f"anytask serve: error {error_id}: task {exc.name!r}: {exc.detail}", file=sys.stderr, flush=True)
        return JSONResponse({"detail": f"task {exc.name!r} cannot be served right now (error {error_id}); the "
                                       "operator's log has the detail"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        return JSONResponse({"detail": f"invalid request: {problems}"}, status_code=422)


    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "backbone": service.backbone, "tasks": service.store.count()}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics_endpoint() -> PlainTextResponse:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/tasks", status_code=201, response_model=TaskOut, dependencies=writer, responses=ERRORS)
    async def create_task(body: CreateTask) -> TaskOut:
        info = await service.create_task(body.name, [e.text for e in body.examples],
                                          [e.label for e in body.examples], body.head, body.params, body.labels)
        return TaskOut(**info.__dict__)

    @app.post("/v1/groups", status_code=201, response_model=GroupOut, dependencies=writer, responses=ERRORS)
    async def create_group(body: CreateGroup) -> GroupOut:
        infos = await service.create_group(body.name, {n: ([e.text for e in ex], [e.label for e in ex])
                                                       for n, ex in body.tasks.items()}, body.method, body.params)
        return GroupOut(name=body.name, method=body.method, tasks=[TaskOut(**i.__dict__) for i in infos])

    @app.get("/v1/tasks", response_model=TaskList)
    def list_tasks() -> TaskList:
        return TaskList(tasks=[TaskOut(**i.__dict__) for i in service.store.list()])

    @app.get("/v1/tasks/{name}", response_model=TaskOut, responses=ERRORS)
    def describe_task(name: str) -> TaskOut:
        return TaskOut(**service.store.get(name).__dict__)

    @app.delete("/v1/tasks/{name}", status_code=204, dependencies=writer, responses=ERRORS)
    async def delete_task(name: str) -> None:
        await service.delete_task(name)

    @app.post("/v1/tasks/{name}/examples", response_model=TaskOut, dependencies=writer, responses=ERRORS)
    async def add_examples(name: str, body: AddExamples) -> TaskOut:
        info = await service.add_examples(name, [e.text for e in body.examples], [e.label for e in body.examples])
        return TaskOut(**info.__dict__)

    @app.post("/v1/tasks/{name}/predict", response_model=Predictions, responses=ERRORS)
    async def predict(name: str, body: PredictTexts) -> Predictions:
        out = await service.predict([name], body.texts, body.top_k)
        return Predictions(predictions=out[name])

    @app.post("/v1/predict", response_model=ManyPredictions, responses=ERRORS)
    async def predict_many(body: PredictMany) -> ManyPredictions:
        out = await service.predict(body.tasks, body.texts, body.top_k)
        return ManyPredictions(results={k: Predictions(predictions=v) for k, v in out.items()})

    app.include_router(index_router(service, writer, ERRORS))
    app.add_middleware(BodyLimit, max_bytes=service.limits.max_body_bytes, metrics=metrics)
    if loopback_only:
        app.add_middleware(LoopbackOnly)
    if log is not None:
        app.add_middleware(RequestLog, log=log, json_lines=log_json)
    return app


LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "testserver"}  # testserver: Starlette's TestClient


def _host_name(value: str) -> str:
    value = value.split("://", 1)[-1].split("/", 1)[0].lower()
    if value.startswith("["):  # [::1]:8000
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class LoopbackOnly:
    """Pure ASGI middleware: 403 unless the Host (and any Origin) header names this machine's loopback."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            names = [_host_name(headers.get("host", ""))] + ([_host_name(headers["origin"])] if "origin" in headers
                                                              else [])
            if not all(n in LOOPBACK_NAMES or n.startswith("127.") for n in names):
                response = JSONResponse({"detail": "dev mode answers loopback hosts only (Host/Origin "
                                                   f"{', '.join(names)!s}); run with a token to serve other names"},
                                        status_code=403)
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class Metrics:
    """The service's Prometheus metrics (prometheus_client, one registry per app): requests and their latency
    histogram by method, route template and status (bounded label sets), encoder batches and texts, tasks."""

    def __init__(self, service: TaskService) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("anytask_requests", "HTTP requests", ["method", "path", "status"],
                                registry=self.registry)
        self.seconds = Counter("anytask_request_seconds", "total seconds spent answering",
                               ["method", "path", "status"], registry=self.registry)
        self.latency = Histogram("anytask_request_duration_seconds", "request latency", ["method", "path"],
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
                                 registry=self.registry)

        class _Service:
            def collect(self):
                yield CounterMetricFamily("anytask_encoder_batches", "shared encoder passes", service.batcher.batches)
                yield CounterMetricFamily("anytask_encoder_texts", "texts embedded by the encoder",
                                          service.batcher.texts)
                yield GaugeMetricFamily("anytask_tasks", "tasks in the registry", service.store.count())
                yield GaugeMetricFamily("anytask_indexes", "search indexes in the registry",
                                        service.indexes.store.count())

        self.registry.register(_Service())

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        self.requests.labels(method, path, str(status)).inc()
        self.seconds.labels(method, path, str(status)).inc(seconds)
        self.latency.labels(method, path).observe(seconds)


class RequestLog:
    """Pure ASGI middleware: one line per HTTP request — ``GET /healthz 200 3 ms``, or with ``json_lines`` one
    JSON object: time (UTC, ISO 8601), method, path, status, ms, and the task or index the path names."""

    def __init__(self, app, *, log, json_lines: bool = False) -> None:
        self.app, self.log, self.json_lines = app, log, json_lines

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            ms = 1000 * (time.perf_counter() - start)
            if not self.json_lines:
                self.log(f"{scope['method']} {scope['path']} {status[0]} {ms:.0f} ms")
            else:
                import datetime
                import json

                record = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                          "method": scope["method"], "path": scope["path"], "status": status[0], "ms": round(ms, 1)}
                parts = scope["path"].split("/")  # /v1/tasks/<name>/..., /v1/indexes/<name>/...
                if len(parts) > 3 and parts[1] == "v1" and parts[2] in ("tasks", "indexes") and parts[3]:
                    record["task" if parts[2] == "tasks" else "index"] = parts[3]
                self.log(json.dumps(record))


class _HTTP(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
