"""The local HTTP API hands handlers the events API Gateway would, and answers as API Gateway would."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from evergreen_cli.local_stack.http_api import HttpApiServer, build_http_api_v2_event, http_response_from_result
from evergreen_cli.local_stack.template import HttpRoute


class Recorder:
    """A tiny handler that remembers its events and returns whatever the test asks for."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.result: Any = {"statusCode": 200, "body": "ok"}

    def __call__(self, function: str, event: dict[str, Any]) -> Any:
        self.events.append({"function": function, **event})
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def api(recorder: Recorder) -> Iterator[HttpApiServer]:
    server = HttpApiServer([HttpRoute("POST", "/webhooks/shopify", "Echo", "2.0")], recorder, port=0)
    server.start()
    yield server
    server.stop()


def test_a_post_arrives_as_a_payload_v2_event(api: HttpApiServer, recorder: Recorder) -> None:
    body = b'{"id": 1}'
    response = httpx.post(
        f"{api.url}/webhooks/shopify?a=1&a=2&b=x",
        content=body,
        headers={"Content-Type": "application/json", "X-Shopify-Topic": "orders/create", "User-Agent": "Shopify"},
    )
    assert response.status_code == 200 and response.text == "ok"
    (event,) = recorder.events
    assert event["function"] == "Echo"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /webhooks/shopify"
    assert event["rawPath"] == "/webhooks/shopify"
    assert event["rawQueryString"] == "a=1&a=2&b=x"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x"}
    assert event["headers"]["x-shopify-topic"] == "orders/create"
    assert all(name == name.lower() for name in event["headers"])
    assert event["body"] == body.decode() and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/webhooks/shopify",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "Shopify",
    }
    assert context["stage"] == "$default" and context["routeKey"] == "POST /webhooks/shopify"
    assert context["requestId"] and context["timeEpoch"] > 0
    assert response.headers["apigw-requestid"] == context["requestId"]


def test_a_binary_body_arrives_base64_encoded(api: HttpApiServer, recorder: Recorder) -> None:
    httpx.post(f"{api.url}/webhooks/shopify", content=b"\x00\xff", headers={"Content-Type": "application/octet-stream"})
    (event,) = recorder.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff"


def test_an_unknown_route_is_404_not_found_like_api_gateway(api: HttpApiServer, recorder: Recorder) -> None:
    for response in (httpx.post(f"{api.url}/webhooks/nope", content=b"{}"), httpx.get(f"{api.url}/webhooks/shopify")):
        assert response.status_code == 404
        assert response.json() == {"message": "Not Found"}
    assert recorder.events == []


def test_the_handlers_status_headers_and_base64_body_reach_the_client(api: HttpApiServer, recorder: Recorder) -> None:
    recorder.result = {
        "statusCode": 401,
        "headers": {"content-type": "text/plain", "x-reason": "signature"},
        "body": base64.b64encode(b"denied").decode(),
        "isBase64Encoded": True,
    }
    response = httpx.post(f"{api.url}/webhooks/shopify", content=b"{}")
    assert response.status_code == 401
    assert response.headers["x-reason"] == "signature" and response.headers["content-type"] == "text/plain"
    assert response.content == b"denied"


def test_a_plain_dict_result_becomes_a_200_json_response(api: HttpApiServer, recorder: Recorder) -> None:
    recorder.result = {"accepted": True}
    response = httpx.post(f"{api.url}/webhooks/shopify", content=b"{}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"accepted": True}


def test_a_handler_that_raises_is_a_500_internal_server_error(api: HttpApiServer, recorder: Recorder) -> None:
    recorder.result = RuntimeError("boom")
    response = httpx.post(f"{api.url}/webhooks/shopify", content=b"{}")
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}


def test_routes_can_be_added_for_tests(api: HttpApiServer, recorder: Recorder) -> None:
    api.add_route("GET", "/items/{item_id}", "Items")
    response = httpx.get(f"{api.url}/items/42")
    assert response.status_code == 200
    (event,) = recorder.events
    assert event["function"] == "Items" and event["pathParameters"] == {"item_id": "42"}
    assert event["routeKey"] == "GET /items/{item_id}"


def test_the_event_builder_joins_repeated_headers_and_moves_cookies() -> None:
    event = build_http_api_v2_event(
        "post",
        "/webhooks/klaviyo",
        [("X-Many", "a"), ("x-many", "b"), ("Cookie", "s=1; t=2"), ("Content-Type", "application/json")],
        json.dumps({"data": []}).encode(),
        {"shop": "x.myshopify.com"},
    )
    assert event["headers"]["x-many"] == "a,b"
    assert event["cookies"] == ["s=1", "t=2"] and "cookie" not in event["headers"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["rawQueryString"] == "shop=x.myshopify.com"
    assert json.loads(event["body"]) == {"data": []}


def test_a_string_result_is_the_body_as_is() -> None:
    response = http_response_from_result("hello")
    assert (response.status, response.body) == (200, b"hello")


# --- hostile or broken clients, over real sockets -------------------------------------------------------------

REQUEST_HEAD = "POST /webhooks/shopify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
CLIENT_TIMEOUT = 30.0
"""How long a test client waits for an answer: far beyond the server's read timeout, so only a hang reaches it."""


@pytest.fixture
def impatient_api(recorder: Recorder) -> Iterator[HttpApiServer]:
    """The API with a short read timeout, so stalled clients are cut off quickly."""
    server = HttpApiServer([HttpRoute("POST", "/webhooks/shopify", "Echo", "2.0")], recorder, port=0, read_timeout=0.5)
    server.start()
    yield server
    server.stop()


def _exchange(api: HttpApiServer, raw: bytes, *, half_close: bool = False) -> bytes:
    """Send raw bytes, optionally end the sending side, and read until the server closes or answers in full."""
    with socket.create_connection((api.host, api.port), timeout=CLIENT_TIMEOUT) as connection:
        connection.sendall(raw)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                return received
            received += chunk
            head, separator, body = received.partition(b"\r\n\r\n")
            if separator:
                match = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
                if match and len(body) >= int(match.group(1)):
                    return received


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.mark.parametrize("announced", ["abc", "-1", "1.5", "0x10", "", "١٢"])
def test_a_content_length_that_is_not_a_number_gets_400_and_reaches_no_handler(
    impatient_api: HttpApiServer, recorder: Recorder, announced: str
) -> None:
    raw = f"{REQUEST_HEAD}Content-Length: {announced}\r\n\r\n{{}}".encode()
    response = _exchange(impatient_api, raw)
    if announced == "":
        # No length is no body: the request itself is fine.
        assert _status(response) == 200
        return
    assert _status(response) == 400
    assert recorder.events == []


@pytest.mark.parametrize("lengths", [("2", "2"), ("2", "5")], ids=["same", "different"])
def test_two_content_length_headers_get_400_and_reach_no_handler_as_on_api_gateway(
    impatient_api: HttpApiServer, recorder: Recorder, lengths: tuple[str, str]
) -> None:
    first, second = lengths
    raw = f"{REQUEST_HEAD}Content-Length: {first}\r\nContent-Length: {second}\r\n\r\n{{}}".encode()
    response = _exchange(impatient_api, raw, half_close=True)
    assert _status(response) == 400
    assert b"more than one Content-Length" in response
    assert recorder.events == []


def test_a_body_shorter_than_its_content_length_gets_400_and_reaches_no_handler(
    impatient_api: HttpApiServer, recorder: Recorder
) -> None:
    raw = f"{REQUEST_HEAD}Content-Length: 100\r\n\r\n".encode() + b'{"id": 1}'
    response = _exchange(impatient_api, raw, half_close=True)
    assert _status(response) == 400
    assert b"short" in response
    assert recorder.events == []


def test_a_client_that_sends_headers_then_stalls_gets_408(impatient_api: HttpApiServer, recorder: Recorder) -> None:
    raw = f"{REQUEST_HEAD}Content-Length: 100\r\n\r\n".encode() + b'{"id"'
    response = _exchange(impatient_api, raw)
    assert _status(response) == 408
    assert recorder.events == []


def test_a_client_that_stalls_inside_its_headers_is_disconnected(
    impatient_api: HttpApiServer, recorder: Recorder
) -> None:
    response = _exchange(impatient_api, REQUEST_HEAD.encode())
    assert response == b"" or _status(response) == 408
    assert recorder.events == []


def test_an_oversized_content_length_gets_413_without_the_body_being_read(
    impatient_api: HttpApiServer, recorder: Recorder
) -> None:
    raw = f"{REQUEST_HEAD}Content-Length: {10 * 1024 * 1024 + 1}\r\n\r\n".encode()
    assert _status(_exchange(impatient_api, raw)) == 413
    assert recorder.events == []


def test_the_connection_still_serves_requests_after_a_stalled_client(
    impatient_api: HttpApiServer, recorder: Recorder
) -> None:
    _exchange(impatient_api, REQUEST_HEAD.encode())
    response = httpx.post(f"{impatient_api.url}/webhooks/shopify", content=b"{}", timeout=CLIENT_TIMEOUT)
    assert response.status_code == 200


def test_a_burst_of_100_new_connections_all_get_answers(api: HttpApiServer, recorder: Recorder) -> None:
    assert api.listen_backlog >= 100
    connections = 100
    barrier = threading.Barrier(connections)

    def one(index: int) -> int:
        barrier.wait()
        body = json.dumps({"id": index}).encode()
        raw = f"{REQUEST_HEAD}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
        return _status(_exchange(api, raw))

    with ThreadPoolExecutor(max_workers=connections) as pool:
        statuses = list(pool.map(one, range(connections)))

    assert statuses == [200] * connections
    assert sorted(json.loads(event["body"])["id"] for event in recorder.events) == list(range(connections))
