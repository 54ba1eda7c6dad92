"""A local stand-in for the template's HTTP API: requests become payload v2.0 events for the same handlers."""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from evergreen_cli.local_stack.resources import LOCAL_ACCOUNT_ID
from evergreen_cli.local_stack.template import HttpRoute

LOG = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
"""HTTP API's request payload quota."""
LOCAL_API_ID = "local"
READ_TIMEOUT_SECONDS = 5.0
"""How long a client may take to send the next part of its request (headers or body) before the connection ends."""
LISTEN_BACKLOG = 1024
"""Connections the kernel queues before the server accepts them (socketserver's default is 5)."""

Invoke = Callable[[str, dict[str, Any]], Any]
"""(function logical id, event) -> the handler's result."""

_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|xml|javascript|ecmascript|.*\+json|.*\+xml|graphql))(\s*;.*)?$", re.IGNORECASE
)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _request_id() -> str:
    """API Gateway's request id looks like 'JKJaXmPLvHcESHA='."""
    return base64.b64encode(secrets.token_bytes(10)).decode()


def _header_pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(name), str(value)) for name, value in items]


def is_text(content_type: str | None) -> bool:
    """Whether HTTP API passes a body of this content type as text (else base64, with isBase64Encoded)."""
    return bool(content_type) and bool(_TEXT_TYPES.match(content_type or ""))


def build_http_api_v2_event(
    method: str,
    path: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    body: bytes = b"",
    query: str | Mapping[str, str] | None = None,
    *,
    route_key: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
    stage: str = "$default",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The event API Gateway HTTP API (payload format 2.0) hands a Lambda integration for this request.

    Header names are lower-cased and repeated headers comma-joined; cookies move to `cookies`; a body whose
    content type is not text arrives base64-encoded with isBase64Encoded true.
    """
    method = method.upper()
    raw_query = query if isinstance(query, str) else "&".join(f"{k}={v}" for k, v in (query or {}).items())
    raw_query = raw_query.lstrip("?")
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in _header_pairs(headers or {}):
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
    host = merged.get("host", "127.0.0.1")
    merged.setdefault("x-forwarded-for", source_ip)
    merged.setdefault("x-forwarded-proto", "http")
    if body:
        merged.setdefault("content-length", str(len(body)))
    request_id = _request_id()
    at = now or datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT_ID,
            "apiId": LOCAL_API_ID,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key or f"{method} {path}",
            "stage": stage,
            "time": at.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(at.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        parameters: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
        event["queryStringParameters"] = parameters
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        if is_text(merged.get("content-type")):
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


def http_response_from_result(result: Any) -> HttpResponse:
    """How HTTP API (payload 2.0) turns a handler's return value into an HTTP response.

    A dict with statusCode is taken as the response; anything else is a 200 application/json whose body is the
    value itself for a string and its JSON otherwise.
    """
    if isinstance(result, dict) and "statusCode" in result:
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        headers += [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
        raw = result.get("body")
        if raw is None:
            body = b""
        elif result.get("isBase64Encoded"):
            body = base64.b64decode(str(raw))
        else:
            body = (raw if isinstance(raw, str) else json.dumps(raw)).encode("utf-8")
        if not any(name.lower() == "content-type" for name, _ in headers) and body:
            headers.append(("content-type", "application/json"))
        return HttpResponse(int(result["statusCode"]), headers, body)
    text = result if isinstance(result, str) else json.dumps(result)
    return HttpResponse(200, [("content-type", "application/json")], text.encode("utf-8"))


def _json_response(status: int, payload: Mapping[str, Any]) -> HttpResponse:
    return HttpResponse(status, [("content-type", "application/json")], json.dumps(payload).encode())


def _route_pattern(path: str) -> re.Pattern[str]:
    """/items/{id} and /files/{proxy+} as regexes with named groups."""
    parts = []
    for segment in path.strip("/").split("/"):
        match = re.fullmatch(r"\{([A-Za-z0-9_]+)(\+?)\}", segment)
        if match:
            name, greedy = match.groups()
            parts.append(f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "$")


class BadRequestBody(Exception):
    """The request's Content-Length or body cannot be read as HTTP/1.1 framing; the answer carries `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def content_length(value: str | None, *others: str) -> int:
    """The body length a Content-Length header announces: absent is 0; anything but a decimal number is an error,
    and so is a second Content-Length header (`others`), which API Gateway refuses too (request smuggling)."""
    if others:
        raise BadRequestBody(400, "Bad Request: more than one Content-Length header")
    if value is None or value.strip() == "":
        return 0
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise BadRequestBody(400, "Content-Length must be a non-negative integer")
    return int(text)


def read_body(stream: Any, length: int) -> bytes:
    """Exactly `length` bytes of `stream`: 400 when the client ends early, 408 when it stalls past the read timeout."""
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        try:
            chunk = stream.read1(min(remaining, 65536))
        except TimeoutError as error:
            raise BadRequestBody(408, "Request Timeout: the body did not arrive in time") from error
        if not chunk:
            raise BadRequestBody(400, f"Bad Request: the body ended {remaining} bytes short of its Content-Length")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class _ApiHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG


class HttpApiServer:
    """Serves routes (method, path -> function logical id) on a ThreadingHTTPServer.

    A client gets `read_timeout` seconds for each read of its request: one that sends its headers and then stalls gets
    408 (or, stalled inside the headers, a closed connection), so no thread waits forever on it.
    """

    def __init__(
        self,
        routes: Iterable[HttpRoute],
        invoke: Invoke,
        host: str = "127.0.0.1",
        port: int = 3000,
        *,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self.routes: list[HttpRoute] = list(routes)
        self.invoke = invoke
        self.read_timeout = read_timeout
        self._server = _ApiHttpServer((host, port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def listen_backlog(self) -> int:
        return int(self._server.request_queue_size)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_route(self, method: str, path: str, function: str) -> None:
        self.routes.append(HttpRoute(method.upper(), path, function, "2.0"))

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        """The route serving the request (exact paths before parameterised ones), with its path parameters."""
        candidates = sorted(self.routes, key=lambda r: ("{" in r.path, r.method == "ANY"))
        for route in candidates:
            if route.method not in {method.upper(), "ANY"}:
                continue
            found = _route_pattern(route.path).match(path)
            if found:
                return route, found.groupdict()
        return None

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> HttpResponse:
        """One request through the route table and the handler, as API Gateway would answer it."""
        split = urlsplit(target)
        matched = self.match(method, split.path)
        if matched is None:
            return _json_response(404, {"message": "Not Found"})
        if len(body) > MAX_PAYLOAD_BYTES:
            return _json_response(413, {"message": "Request Entity Too Large"})
        route, parameters = matched
        event = build_http_api_v2_event(
            method,
            split.path,
            headers,
            body,
            split.query,
            route_key=route.route_key,
            path_parameters=parameters or None,
            source_ip=source_ip,
        )
        try:
            result = self.invoke(route.function, event)
        except Exception:
            LOG.error("%s raised:\n%s", route.function, traceback.format_exc())
            return _json_response(500, {"message": "Internal Server Error"})
        try:
            response = http_response_from_result(result)
        except (TypeError, ValueError):
            LOG.error("%s returned a malformed response: %r", route.function, result)
            return _json_response(500, {"message": "Internal Server Error"})
        response.headers.append(("apigw-requestid", event["requestContext"]["requestId"]))
        return response

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="http-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "evergreen-local-http-api"
            timeout = api.read_timeout

            def _serve(self) -> None:
                started = time.monotonic()
                try:
                    first, *others = self.headers.get_all("Content-Length") or [""]
                    length = content_length(first, *others)
                    if length > MAX_PAYLOAD_BYTES:
                        raise BadRequestBody(413, "Request Entity Too Large")
                    body = read_body(self.rfile, length)
                except BadRequestBody as error:
                    # The framing is lost: answer and close rather than read the rest as a next request.
                    self.close_connection = True
                    response = _json_response(error.status, {"message": error.message})
                else:
                    response = api.handle(
                        self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                    )
                self.send_response(response.status)
                for name, value in response.headers:
                    if name.lower() not in {"content-length", "connection"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
                LOG.info(
                    "%s %s -> %s (%.0f ms)",
                    self.command,
                    self.path,
                    response.status,
                    (time.monotonic() - started) * 1000,
                )

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                LOG.debug(format, *args)

        return Handler
