"""Typed errors raised low in the gateway, and the one table that maps them to HTTP.

Modules below the routes raise these; only `install_error_handlers` turns them into responses,
so every status code the service can return is decided here.
"""

from __future__ import annotations

import logging
import reprlib
from typing import Any

from gateway.contract import parse_image_error

try:  # the HTTP half. Triton's preprocessing model (no web stack there) imports only the typed errors.
    import orjson
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ModuleNotFoundError:  # pragma: no cover - inside Triton (triton_clip/preprocess_runner.py)
    pass

log = logging.getLogger("gateway.errors")

UNAUTHORIZED_MESSAGE = (
    "Unauthorized access to roboflow API - check API key and make sure the key is valid for "
    "workspace you use. Visit https://docs.roboflow.com/api-reference/authentication"
    "#retrieve-an-api-key to learn how to retrieve one."
)


class GatewayError(Exception):
    """Base of every error the gateway answers on purpose (never a 5xx for bad input)."""

    status_code: int = 400
    retry_after: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"message": self.message}


class InvalidRequest(GatewayError):
    """A request that passed the schema but makes no sense (bad subject_type, empty list...)."""


class ImageLoadError(GatewayError):
    """Upstream's `InputImageLoadError`: 400 `Could not load input image. Cause: ...`.

    `reason` is a short machine label (for metrics), `index` the position in a list of images.
    """

    def __init__(self, cause: str, *, reason: str = "decode", index: int | None = None) -> None:
        self.cause = cause
        self.reason = reason
        self.index = index
        super().__init__(self._format())

    def _format(self) -> str:
        where = f"image at index {self.index}: " if self.index is not None else ""
        return f"Could not load input image. Cause: {where}{self.cause}"

    def at_index(self, index: int) -> "ImageLoadError":
        return ImageLoadError(self.cause, reason=self.reason, index=index)


def image_error_from_triton(message: str) -> ImageLoadError | None:
    """A decode failure reported by Triton's preprocessing model (encoded transport): the same 400 as ours."""
    parsed = parse_image_error(message)
    return ImageLoadError(parsed[1], reason=parsed[0]) if parsed else None


class TextTooLong(GatewayError):
    """Upstream 1.8.x `ModelInputError` shape for a text over the context length."""

    HELP_URL = "https://inference-models.roboflow.com/errors/input-validation/#modelinputerror"

    def __init__(self, index: int | None = None) -> None:
        where = f" (text at index {index})" if index is not None else ""
        super().__init__(
            "Error with model input. Cause: Text input is too long for the model context length. "
            f'Shorten the text and retry{where}, or send "truncate": true.'
        )

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "help_url": self.HELP_URL}


class LimitExceeded(GatewayError):
    """A configured count limit (images, prompts) was exceeded: 400, not upstream's 500."""


class PayloadTooLarge(GatewayError):
    status_code = 413


class Unauthorized(GatewayError):
    status_code = 401

    def __init__(self) -> None:
        super().__init__(UNAUTHORIZED_MESSAGE)


class UnknownVersion(GatewayError):
    status_code = 404

    def __init__(self, version: str | None, served: list[str], label: str = "CLIP") -> None:
        super().__init__(
            f"{label} version {version!r} is not served here. Served versions: {', '.join(served) or 'none'}."
        )


class Overloaded(GatewayError):
    status_code = 429
    retry_after = 1

    def __init__(self, message: str = "The gateway is at its in-flight request limit; retry shortly.") -> None:
        super().__init__(message)


class TritonUnavailable(GatewayError):
    status_code = 503
    retry_after = 2

    def __init__(self, message: str = "The inference server is not available; retry shortly.") -> None:
        super().__init__(message)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_response(exc: GatewayError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return json_response(exc.status_code, exc.body(), headers)


async def _gateway_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


_INPUT_REPR = reprlib.Repr()  # bounded: depth 6, strings 30 chars, ints 40 digits


def _jsonable_errors(errors: list[dict[str, Any]]) -> list[Any]:
    """pydantic's errors as JSON values; `input` may hold bytes or other non-JSON values (then str)."""
    try:
        return orjson.loads(orjson.dumps(errors, default=str))
    except TypeError:
        # orjson refuses ints past 64 bits and nesting past 255 levels, both valid JSON a client can send:
        # keep FastAPI's shape and replace the offending `input` by a bounded repr.
        return [orjson.loads(orjson.dumps({**e, "input": _bounded_repr(e.get("input"))}, default=str)) for e in errors]


def _bounded_repr(value: Any) -> str:
    try:
        return _INPUT_REPR.repr(value)
    except (ValueError, RecursionError):  # an int past Python's 4300-digit str limit
        return "<input not shown>"


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # FastAPI's own 422 shape, as upstream.
    return json_response(422, {"detail": _jsonable_errors(list(exc.errors()))})


def http_error_response(exc: StarletteHTTPException) -> Response:
    return json_response(exc.status_code, {"message": str(exc.detail)}, dict(exc.headers or {}))


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return http_error_response(exc)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # Runs in Starlette's outermost middleware, after ours has returned: pass the request id explicitly.
    log.exception(
        "unhandled error on %s",
        request.url.path,
        extra={"request_id": request.scope.get("state", {}).get("request_id")},
    )
    return json_response(500, {"message": "Internal error."})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
