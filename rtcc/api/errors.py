"""One JSON error envelope for every error the API returns.

::

    {"error": {"code": "not_found", "message": "…", "details": …}, "request_id": "…"}

Library errors (:mod:`rtcc.errors`), FastAPI/Starlette HTTP errors, request
validation errors, an unreachable database (503 ``unavailable``, one warning a minute), a
unique-constraint violation left by a concurrent duplicate (409 ``conflict``), a time beyond what a
date can hold (422 ``validation_failed``: a far-off time with a timezone offset) and
unexpected exceptions are all mapped here; a test walks
the routes and checks the shape. Also here: the request-id and body-size
middleware (pure ASGI, so streaming bodies are counted too).
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rtcc.errors import RtccError

log = logging.getLogger(__name__)

_store_warned = -math.inf  # monotonic time of the last "database unavailable" warning

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    423: "locked_out",
    429: "rate_limited",
    503: "unavailable",
}


def envelope(status: int, code: str, message: str, details: Any, request_id: str) -> JSONResponse:
    """The error response every route uses."""
    headers = {"x-request-id": request_id}
    if status == 401:
        headers["www-authenticate"] = 'Bearer realm="rtcc"'
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details}, "request_id": request_id},
        status_code=status,
        headers=headers,
    )


def _rid(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else uuid.uuid4().hex


def _clean_validation(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        out.append(
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
        )
    return out


def date_overflow(exc: BaseException) -> bool:
    """Whether ``exc`` is a date out of range (``OverflowError: date value out of range``), also as
    wrapped by SQLAlchemy when binding such a time as a query parameter."""
    inner = exc.orig if isinstance(exc, StatementError) else exc
    return isinstance(inner, OverflowError) and "date value out of range" in str(inner)


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the envelope."""

    @app.exception_handler(RtccError)
    async def _rtcc(request: Request, exc: RtccError) -> JSONResponse:
        return envelope(exc.status, exc.code, exc.message, exc.details, _rid(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        msg = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        details = None if isinstance(exc.detail, str) else exc.detail
        return envelope(exc.status_code, code, msg, details, _rid(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _clean_validation(list(exc.errors()))
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"])
        return envelope(
            422,
            "validation_failed",
            f"invalid request: {where}: {first['msg']}" if where else f"invalid request: {first['msg']}",
            details,
            _rid(request),
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _store_down(request: Request, exc: Exception) -> JSONResponse:
        # the database is unreachable (restarting, network): nothing wrong with the request, retry
        # later; one warning a minute, not a traceback per request (the store recovers on its own)
        global _store_warned
        now = time.monotonic()
        if now - _store_warned >= 60.0:
            _store_warned = now
            log.warning(
                "the database is unavailable (%s); answering 503",
                f"{type(exc).__name__}: {exc}".splitlines()[0][:200],
            )
        msg = "the database is not reachable at the moment; retry shortly"
        return envelope(503, "unavailable", msg, None, _rid(request))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = _rid(request)
        log.exception("unhandled error (request %s)", rid)
        return envelope(
            500, "internal_error", f"internal error; quote request id {rid} in a report", None, rid
        )

    @app.exception_handler(IntegrityError)
    async def _duplicate(request: Request, exc: IntegrityError) -> JSONResponse:
        # two requests created the same record at once (a case number, a link, an outcome): the
        # second hits the unique constraint. Nothing was stored for it; the client may reload and retry.
        rid = _rid(request)
        first = (str(exc.orig).splitlines() or [""])[0][:200]
        log.warning("integrity error answered 409 (request %s): %s", rid, first)
        msg = "the request conflicts with a record stored at the same time (a duplicate?): reload and retry"
        return envelope(409, "conflict", msg, None, rid)

    @app.exception_handler(OverflowError)
    @app.exception_handler(StatementError)
    async def _overflow(request: Request, exc: Exception) -> JSONResponse:
        if date_overflow(exc):
            msg = "a time in the request is out of range (give one between 1970 and 9998, with a timezone)"
            return envelope(422, "validation_failed", msg, None, _rid(request))
        return await _unexpected(request, exc)


class RequestIdAndLimitMiddleware:
    """Give every request an id and refuse bodies over ``max_bytes`` with 413.

    The limit is checked against Content-Length up front and against the bytes
    actually received for chunked bodies.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        *,
        upload_bytes: int | None = None,
        upload_paths: re.Pattern[str] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes or max_bytes
        self.upload_paths = upload_paths

    def _limit(self, path: str) -> tuple[int, str]:
        if self.upload_paths is not None and self.upload_paths.fullmatch(path):
            return self.upload_bytes, "server.max_upload_bytes (RTCC_SERVER__MAX_UPLOAD_BYTES)"
        return self.max_bytes, "server.max_request_bytes (RTCC_SERVER__MAX_REQUEST_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        max_bytes, setting = self._limit(str(scope.get("path", "")))
        too_big_msg = f"request body over {max_bytes} bytes; the limit is the setting {setting}"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length < 0:
                    await self._send_error(scope, send, 400, "bad_request", "bad Content-Length", rid)
                    return
                if length > max_bytes:
                    await self._send_error(scope, send, 413, "payload_too_large", too_big_msg, rid)
                    return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _BodyTooLarge(too_big_msg)
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                headers = list(message.get("headers", []))
                if not any(k == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            if not response_started:
                await self._send_error(scope, send, 413, "payload_too_large", too_big_msg, rid)

    @staticmethod
    async def _send_error(scope: Scope, send: Send, status: int, code: str, message: str, rid: str) -> None:
        response = envelope(status, code, message, None, rid)

        async def _noop_receive() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, _noop_receive, send)


class _BodyTooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body parser re-raises it."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)
