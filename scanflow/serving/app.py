"""The HTTP surface of a serving worker, as a plain ASGI application.

Endpoints (all JSON):

- OIP v2: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``, ``/v2/models/{name}``,
  ``/v2/models/{name}/ready``, ``POST /v2/models/{name}/infer``
  (also under ``/v2/models/{name}/versions/{version}/...``);
- MLflow scoring: ``POST /invocations``, ``GET /ping``, ``/health``, ``/version``;
- ``GET /metrics`` (Prometheus, all workers);
- admin: ``GET /admin/status``, ``POST /admin/workers`` (``{"workers": n}``),
  ``POST /admin/refresh`` (look at the registry now). The two POSTs act on the service, so
  they require ``Authorization: Bearer <token>`` with the application's token
  (:mod:`scanflow.auth`) and answer 401 without it; everything else is open.

The prediction endpoints are the hot path, so routing is a dict lookup rather than a
framework router; every answer carries ``x-model-version`` and ``x-request-id``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from scanflow.auth import UNAUTHORIZED, authorized
from scanflow.serving import invocations, oip
from scanflow.serving.batcher import Batcher, Result
from scanflow.serving.columns import layout_of
from scanflow.serving.errors import RequestError
from scanflow.serving.metrics import Metrics, render
from scanflow.serving.model import LoadedModel, rows_of
from scanflow.serving.predictions import PredictionLogWriter

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
JSON = b"application/json"
OCTET = b"application/octet-stream"
POST_PATHS = frozenset({"/invocations", "/admin/workers", "/admin/refresh"})
GET_ALLOW = "GET, HEAD"


class ClientGone(Exception):
    """The client disconnected before its body arrived."""


class ServingApp:
    """ASGI app of one worker; ``control`` forwards admin calls to the supervisor."""

    def __init__(
        self,
        *,
        name: str,
        current_model: Callable[[], LoadedModel | None],
        batcher: Batcher,
        metrics: Metrics,
        max_request_bytes: int,
        allow_non_finite: bool = False,
        prediction_log: PredictionLogWriter | None = None,
        sample_rate: float = 1.0,
        control: Callable[[str, dict[str, Any]], Awaitable[Any]] | None = None,
        token: str | None = None,
        not_ready_reason: Callable[[], str] = lambda: "the model is still loading",
    ) -> None:
        self.name = name
        self.current_model = current_model
        self.batcher = batcher
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes
        self.allow_non_finite = allow_non_finite
        self.prediction_log = prediction_log
        self.sample_rate = sample_rate
        self.control = control
        self.token = token
        self.not_ready_reason = not_ready_reason
        self._rid_prefix = f"{random.getrandbits(32):08x}-"
        self._rid = 0
        self._get = {
            "/v2": self._server_meta,
            "/v2/": self._server_meta,
            "/v2/health/live": self._live,
            "/v2/health/ready": self._ready,
            "/ping": self._ready,
            "/health": self._ready,
            "/version": self._version,
            "/metrics": self._metrics,
            "/admin/status": self._admin_status,
        }

    # -- ASGI entry ---------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if method == "POST":
            if path == "/invocations":
                await self._predict(scope, receive, send, "invocations")
                return
            if path.startswith("/v2/models/") and path.endswith("/infer"):
                await self._predict(scope, receive, send, "infer")
                return
            if path in ("/admin/workers", "/admin/refresh"):
                await self._admin_post(scope, receive, send, path)
                return
        elif method in ("GET", "HEAD"):
            handler = self._get.get(path)
            if handler is not None:
                await handler(scope, send)
                return
            if path.startswith("/v2/models/") and self._allowed(path) == GET_ALLOW:
                await self._model_get(scope, send, path)
                return
        allowed = self._allowed(path)
        if allowed is None:
            await _json(send, 404, {"error": f"no endpoint {method} {path}; see docs/serving.md"})
        elif method == "OPTIONS":
            await _send(send, 204, b"", JSON, [(b"allow", f"{allowed}, OPTIONS".encode())])
        else:
            await _json(
                send,
                405,
                {"error": f"{method} is not allowed on {path}; use {allowed}"},
                extra=[(b"allow", allowed.encode())],
            )

    def _allowed(self, path: str) -> str | None:
        """The methods ``path`` answers (the ``Allow`` header), ``None`` for no endpoint."""
        if path in POST_PATHS:
            return "POST"
        if path in self._get:
            return GET_ALLOW
        if not path.startswith("/v2/models/"):
            return None
        parts = path[len("/v2/models/") :].strip("/").split("/")
        rest = parts[1:]
        if len(rest) >= 2 and rest[0] == "versions":
            rest = rest[2:]
        if not parts[0]:
            return None
        if rest == ["infer"]:
            return "POST"
        return GET_ALLOW if rest in ([], ["ready"]) else None

    # -- prediction -----------------------------------------------------------------
    async def _predict(
        self, scope: dict[str, Any], receive: Receive, send: Send, endpoint: str
    ) -> None:
        started = time.perf_counter()
        headers = dict(scope["headers"])
        rid_header = headers.get(b"x-request-id")
        version = b""
        extra_headers: list[tuple[bytes, bytes]] = []
        self.batcher.arriving += 1
        arriving = True
        try:
            model = self.current_model()
            if endpoint == "infer":
                self._check_name(scope["path"])
            body = await self._read_body(headers, receive)
            encoding = headers.get(b"content-encoding")
            if encoding and encoding.lower() != b"identity":
                raise RequestError(
                    f"Content-Encoding {encoding.decode(errors='replace')!r} is not supported; "
                    "send the body uncompressed",
                    415,
                )
            if model is None:
                raise RequestError(f"model not ready: {self.not_ready_reason()}", 503)
            if endpoint == "infer" and "/versions/" in scope["path"]:
                self._check_version(scope["path"], model.version)
            signature = model.signature
            if endpoint == "infer":
                json_length = headers.get(b"inference-header-content-length")
                request = oip.decode_infer(
                    body,
                    signature,
                    json_length=None if json_length is None else oip.header_length(json_length),
                    allow_non_finite=self.allow_non_finite,
                )
                data, rows, client_id = request.data, request.rows, request.id
            else:
                data = invocations.decode(
                    body,
                    headers.get(b"content-type", b"").decode(),
                    signature,
                    allow_non_finite=self.allow_non_finite,
                )
                rows, client_id = rows_of(data), None
            self.batcher.arriving -= 1
            arriving = False
            result: Result = await self.batcher.predict(data, rows)
            version = result.version.encode()
            rid = client_id or (rid_header.decode() if rid_header else self._next_id())
            ctype = JSON
            if endpoint == "infer":
                current = self.current_model() or model
                payload, json_length_out = oip.encode_infer(
                    result.output,
                    model_name=self.name,
                    version=result.version,
                    request_id=rid,
                    signature=current.signature,
                    outputs=request.outputs,
                    binary_output=request.binary_output,
                )
                if json_length_out is not None:
                    ctype = OCTET
                    extra_headers.append(
                        (b"inference-header-content-length", str(json_length_out).encode())
                    )
            else:
                payload = invocations.encode(result.output)
            status = 200
        except RequestError as exc:
            ctype, extra_headers = JSON, []
            status, rid = exc.status, (rid_header.decode() if rid_header else self._next_id())
            if exc.version is not None:  # the model answered, with an error
                version = exc.version.encode()
            if endpoint == "invocations":
                payload = invocations.error_body(str(exc), status)
            else:
                payload = orjson.dumps(
                    {
                        "error": str(exc),
                        **(
                            {"model_name": self.name, "model_version": exc.version}
                            if exc.version is not None
                            else {}
                        ),
                    }
                )
            data = result = None  # type: ignore[assignment]
        except ClientGone:
            return
        finally:
            if arriving:
                self.batcher.arriving -= 1
        extra_headers.append((b"x-request-id", rid.encode()))
        if version:
            extra_headers.append((b"x-model-version", version))
        if status == 413:
            extra_headers.append((b"connection", b"close"))
        await _send(send, status, payload, ctype, extra_headers)
        elapsed = time.perf_counter() - started
        self.metrics.observe_request(endpoint, status, elapsed)
        if (
            status == 200
            and self.prediction_log is not None
            and (self.sample_rate >= 1.0 or random.random() < self.sample_rate)
        ):
            self.prediction_log.append(
                {
                    "ts": time.time(),
                    "id": rid,
                    "model_version": result.version,
                    "latency_ms": round(elapsed * 1000, 3),
                    "endpoint": endpoint,
                    "inputs": data,
                    "outputs": result.output,
                }
            )

    def _next_id(self) -> str:
        self._rid += 1
        return f"{self._rid_prefix}{self._rid}"

    def _check_name(self, path: str) -> None:
        name = path[len("/v2/models/") :].split("/", 1)[0]
        if name != self.name:
            raise RequestError(f"unknown model {name!r}; this service serves {self.name!r}", 404)

    def _check_version(self, path: str, serving: str) -> None:
        """A ``/v2/models/{name}/versions/{v}/...`` path must name the version serving."""
        parts = path[len("/v2/models/") :].strip("/").split("/")
        if len(parts) >= 3 and parts[1] == "versions" and parts[2] != serving:
            raise RequestError(
                f"version {parts[2]!r} of {self.name!r} is not served; this "
                f"service serves version {serving!r}",
                404,
            )

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        limit = self.max_request_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestError(self._too_large(int(declared)), 413)
        message = await receive()
        body = message.get("body", b"")
        while message.get("more_body"):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            body += message.get("body", b"")
            if len(body) > limit:
                raise RequestError(self._too_large(len(body)), 413)
        if message["type"] == "http.disconnect":
            raise ClientGone()
        return body

    def _too_large(self, size: int) -> str:
        return (
            f"request body of {size} bytes is over the limit of {self.max_request_bytes} "
            "bytes; send fewer rows per request or raise the service's max_request_mb"
        )

    # -- metadata and health ----------------------------------------------------------
    async def _server_meta(self, scope: dict[str, Any], send: Send) -> None:
        from scanflow import __version__

        await _json(
            send,
            200,
            {"name": "scanflow", "version": __version__, "extensions": ["binary_tensor_data"]},
        )

    async def _version(self, scope: dict[str, Any], send: Send) -> None:
        from scanflow import __version__

        await _json(send, 200, {"scanflow": __version__})

    async def _live(self, scope: dict[str, Any], send: Send) -> None:
        await _json(send, 200, {"live": True})

    async def _ready(self, scope: dict[str, Any], send: Send) -> None:
        model = self.current_model()
        if model is None:
            await _json(send, 503, {"ready": False, "reason": self.not_ready_reason()})
        else:
            await _json(send, 200, {"ready": True}, model.version)

    async def _model_get(self, scope: dict[str, Any], send: Send, path: str) -> None:
        parts = path[len("/v2/models/") :].strip("/").split("/")
        if parts[0] != self.name:
            await _json(
                send,
                404,
                {"error": f"unknown model {parts[0]!r}; this service serves {self.name!r}"},
            )
            return
        rest = parts[1:]
        model = self.current_model()
        if len(rest) >= 2 and rest[0] == "versions":
            if model is not None and rest[1] != model.version:
                await _json(
                    send,
                    404,
                    {
                        "error": f"version {rest[1]!r} of {self.name!r} is not "
                        f"served; this service serves version "
                        f"{model.version!r}"
                    },
                    model.version,
                )
                return
            rest = rest[2:]
        if rest == ["ready"]:
            await _json(
                send,
                200 if model else 503,
                {"name": self.name, "ready": bool(model)},
                model.version if model else None,
            )
        else:  # the model's metadata (the router sends only these two paths here)
            if model is None:
                await _json(send, 503, {"error": f"model not ready: {self.not_ready_reason()}"})
                return
            meta: dict[str, Any] = {
                "name": self.name,
                "versions": [model.version],
                "platform": "mlflow",
                "inputs": model.signature.to_oip("inputs"),
                "outputs": model.signature.to_oip("outputs"),
            }
            layout = layout_of(model.signature)
            if layout is not None:
                meta["parameters"] = layout.metadata()
            await _json(send, 200, meta, model.version)

    async def _metrics(self, scope: dict[str, Any], send: Send) -> None:
        self.metrics.queue_depth.set(self.batcher.depth)
        body, ctype = render()
        await _send(send, 200, body, ctype.encode())

    # -- admin (answered by the supervisor) -------------------------------------------
    async def _admin_status(self, scope: dict[str, Any], send: Send) -> None:
        if self.control is None:
            await _json(send, 404, {"error": "no supervisor: admin endpoints are off"})
            return
        await _json(send, 200, await self.control("status", {}))

    async def _admin_post(
        self, scope: dict[str, Any], receive: Receive, send: Send, path: str
    ) -> None:
        headers = dict(scope["headers"])
        if not authorized(headers.get(b"authorization"), self.token):
            client = scope.get("client") or ("?", 0)
            logger.warning(
                "refused POST %s from %s: %s",
                path,
                client[0],
                "wrong token" if headers.get(b"authorization") else "no token",
            )
            await _json(
                send, 401, {"error": UNAUTHORIZED}, extra=[(b"www-authenticate", b"Bearer")]
            )
            return
        if self.control is None:
            await _json(send, 404, {"error": "no supervisor: admin endpoints are off"})
            return
        try:
            body = await self._read_body(headers, receive)
            params = orjson.loads(body) if body.strip() else {}
            if not isinstance(params, dict):
                raise RequestError("the body must be a JSON object")
            method = "scale" if path == "/admin/workers" else "refresh"
            reply = await self.control(method, params)
        except (RequestError, orjson.JSONDecodeError) as exc:
            await _json(send, getattr(exc, "status", 400), {"error": str(exc)})
            return
        except ClientGone:
            return
        if isinstance(reply, dict) and "error" in reply:
            await _json(send, int(reply.get("status", 400)), reply)
        else:
            await _json(send, 200, reply)


async def _send(
    send: Send,
    status: int,
    body: bytes,
    ctype: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(
    send: Send,
    status: int,
    data: Any,
    version: str | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    extra = [*(extra or []), *([(b"x-model-version", version.encode())] if version else [])]
    await _send(send, status, orjson.dumps(data, default=str), JSON, extra)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
