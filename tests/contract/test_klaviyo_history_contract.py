"""The engagement-history requests (GET /api/metrics, GET /api/events) conform to Klaviyo's OpenAPI spec,
and the rate limits the history client honours are the spec's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from evergreen.klaviyo import history as kh
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.requests import KlaviyoRequest
from evergreen_cli.sandboxes.klaviyo_spec import KlaviyoSpec, load_spec

pytestmark = pytest.mark.contract

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "klaviyo" / "openapi" / "stable.json"


@pytest.fixture(scope="module")
def spec() -> KlaviyoSpec:
    if not SPEC_PATH.is_file():
        pytest.skip("../shared is absent (user clone): the contract tests need ../shared/klaviyo/openapi/stable.json")
    return load_spec(SPEC_PATH)


def on_the_wire(requests: list[KlaviyoRequest]) -> list[httpx.Request]:
    captured: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200, json={"data": [], "links": {"next": None}})

    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        client = KlaviyoClient("https://a.klaviyo.com", "pk_contract_0123456789", http=http, sleep=lambda s: None)
        for request in requests:
            client.send(request)
    return captured


def test_history_requests_conform_to_klaviyos_spec(spec: KlaviyoSpec) -> None:
    since = datetime(2026, 5, 24, 12, 30, tzinfo=UTC)
    requests = [
        kh.metrics_request(),
        kh.metrics_request("bmV4dA=="),
        kh.events_request("RESQ6t", since),
        kh.events_request("RESQ6t", since, cursor="bmV4dA==", page_size=50),
        kh.events_request("RESQ6t", since, until=since + timedelta(minutes=20)),  # the engagement poll's window
    ]
    problems = {}
    for position, request in enumerate(on_the_wire(requests)):
        errors = spec.validate(
            request.method,
            request.url.path,
            query=dict(request.url.params),
            headers=dict(request.headers),
            body=request.content or None,
        )
        if errors:
            problems[f"#{position} {request.url}"] = errors[:5]
    assert problems == {}


def test_the_history_rate_limits_are_klaviyos(spec: KlaviyoSpec) -> None:
    for operation in (kh.OP_GET_EVENTS, kh.OP_GET_METRICS):
        limit = kh.HISTORY_RATE_LIMITS[operation]
        assert (limit.burst_per_second, limit.steady_per_minute) == spec.rate_limit(operation)
