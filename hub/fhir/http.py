"""FHIR over HTTP: request bodies, formats, preferences and responses."""

from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from fastapi.responses import Response

from hub.fhir.outcome import (
    BadRequest,
    HubError,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from hub.fhir.result import Context, Result, version_headers

FHIR_JSON = "application/fhir+json"
_JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir"}
_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
_XML_FORMATS = {"xml", "application/xml", "application/fhir+xml", "text/xml"}
# A form of search parameters, or of credentials, is far smaller than this.
MAX_FORM_BYTES = 64 * 1024


def check_format(request: Request) -> None:
    """Refuse `_format` or `Accept` values asking for anything but FHIR JSON."""
    fmt = request.query_params.get("_format")
    if fmt is not None and fmt.split(";")[0].strip() not in _FORMATS:
        raise NotAcceptable(f"_format={fmt} is not supported: this hub speaks FHIR JSON only")
    accept = request.headers.get("accept", "")
    if accept and all(a.split(";")[0].strip() in _XML_FORMATS for a in accept.split(",")):
        raise NotAcceptable(f"Accept: {accept} is not supported: this hub speaks FHIR JSON only")


async def read_body(request: Request, limit: int) -> bytes:
    """Read a request's body, refusing (413) one larger than `limit` bytes before reading it
    whole."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is {declared} bytes; the limit is {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    """Read and parse a FHIR JSON body, enforcing content type and size."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _JSON_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {content_type or '(none)'} is not supported: "
            f"send {FHIR_JSON} or application/json"
        )
    body = await read_body(request, limit)
    if not body.strip():
        raise BadRequest("The request has no body; a FHIR resource was expected")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"The body is not valid JSON: {error}") from None


async def form_params(request: Request) -> list[tuple[str, str]]:
    """Read the search parameters of a `POST _search` form body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType(
            f"POST _search takes application/x-www-form-urlencoded, not {content_type or '(none)'}"
        )
    body = (await read_body(request, MAX_FORM_BYTES)).decode("utf-8", errors="replace")
    return parse_qsl(body, keep_blank_values=True)


def prefer(request: Request, name: str) -> str | None:
    """Return one token of the Prefer header, e.g. prefer(request, 'return')."""
    for part in request.headers.get("prefer", "").split(";"):
        part = part.strip()
        for item in part.split(","):
            k, _, v = item.strip().partition("=")
            if k.strip() == name:
                return v.strip().strip('"')
    return None


def base_url(request: Request, configured: str | None) -> str:
    """Return the absolute URL of the FHIR base: the configured public one, else the address
    the hub listens on. Never the request's Host header, which any caller writes."""
    if configured:
        return configured.rstrip("/")
    settings = request.app.state.settings
    # A wildcard address is where the hub listens, not where a client reaches it.
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/fhir"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Return a FHIR JSON response."""
    content = b"" if body is None else orjson.dumps(body)
    return Response(content=content, status_code=status, headers=headers, media_type=FHIR_JSON)


def result_response(ctx: Context, result: Result) -> Response:
    """Turn an interaction's result into an HTTP response, noting for the audit trail what
    it returns or wrote."""
    if ctx.audit is not None:
        ctx.audit.result(result.body, result.stored)
    return json_response(result.body, result.status, version_headers(ctx, result))


def error_response(error: HubError) -> Response:
    """Turn a HubError into its OperationOutcome response."""
    return json_response(error.outcome(), error.status, error.headers)
