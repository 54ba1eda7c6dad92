"""Every request Evergreen can send to Klaviyo conforms to Klaviyo's published OpenAPI spec (revision 2026-07-15).

Traffic is generated the way production makes it (pusher -> client -> HTTP), captured at the transport, and each
captured request is checked by evergreen_cli.sandboxes.klaviyo_spec: path, method, parameters, required headers,
security, body schema, and no body field the spec does not declare.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from evergreen.domain.changes import ErasedProfile, ProfileErasure, SegmentChange
from evergreen.domain.list_moves import MemberListChange
from evergreen.klaviyo import requests as kr
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.pusher import KlaviyoPusher
from evergreen.settings import KLAVIYO_REVISION
from evergreen_cli.sandboxes.klaviyo_api import start_sandbox
from evergreen_cli.sandboxes.klaviyo_spec import KlaviyoSpec, load_spec

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT.parent / "shared" / "klaviyo" / "openapi" / "stable.json"
API_KEY = "pk_contract_0123456789abcdef0123456789"
LISTS = {"vip": "Y6nRLr", "lapsed": "Xk9Qp2", "at_risk": "Ab12Cd"}


@pytest.fixture(scope="session")
def spec() -> KlaviyoSpec:
    if not SPEC_PATH.is_file():
        pytest.skip(
            "../shared is absent (user clone): Klaviyo contract tests need ../shared/klaviyo/openapi/stable.json"
        )
    return load_spec(SPEC_PATH)


# --- traffic -------------------------------------------------------------------------------------------------


FACT_PROPERTIES: dict[str, Any] = {
    "net_spent": 1234.5,
    "orders_count": 7,
    "last_order_at": "2026-07-01T10:00:00Z",
    "rfm_score": 13,
    "expected_next_order_at": None,
    "vendors_bought": ["Maple Co"],
    "coordinates": [45.4215, -75.6972],
}
"""What `Definitions.property_values` gives: numbers, ISO strings, lists and null."""


def change(number: int, **overrides: Any) -> SegmentChange:
    fields: dict[str, Any] = {
        "shop": "evergreen-demo.myshopify.com",
        "profile_key": f"customer#{8_100_000_000 + number}",
        "version": 7,
        "changed_at": datetime(2026, 7, 14, 23, 59, 59, 123456, tzinfo=UTC),
        "segments": ["vip", "repeat", "engaged", "subscribed"],
        "entered": ["vip"],
        "exited": ["lapsed", "at_risk"],
        "customer_id": str(8_100_000_000 + number),
        "email": f"shopper{number}@example.com",
        "phone": "+447911123456",
        "first_name": "Grace",
        "last_name": "Hopper",
    }
    fields.update(overrides)
    return SegmentChange(**fields)


class CapturingKlaviyo:
    """Records each request as sent on the wire and answers as Klaviyo would."""

    def __init__(self, known: dict[str, str] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.known = dict(known or {})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/api/profile-import":
            external_id = json.loads(request.content)["data"]["attributes"]["external_id"]
            profile_id = self.known.setdefault(external_id, f"01KP{len(self.known):022d}")
            return httpx.Response(201, json={"data": {"type": "profile", "id": profile_id, "attributes": {}}})
        if path == "/api/profiles":
            data = [
                {"type": "profile", "id": pid, "attributes": {"external_id": eid}}
                for eid, pid in self.known.items()
                if f'"{eid}"' in request.url.params["filter"]
            ]
            return httpx.Response(200, json={"data": data})
        if path.startswith("/api/lists/"):
            return httpx.Response(204)
        if request.method == "GET" and path.endswith("/import-errors"):
            pointer = "/data/attributes/profiles/data/0/attributes/email"
            refused = {
                "type": "import-error",
                "id": "E1",
                "attributes": {"code": "invalid", "source": {"pointer": pointer}},
            }
            return httpx.Response(200, json={"data": [refused], "links": {"self": str(request.url)}})
        if request.method == "GET" and path.startswith("/api/profile-bulk-import-jobs/"):
            attributes = {"status": "complete", "total_count": 1, "failed_count": 1}
            return httpx.Response(
                200, json={"data": {"type": "profile-bulk-import-job", "id": "J1", "attributes": attributes}}
            )
        return httpx.Response(202, json={"data": {"type": "job", "id": "J1", "attributes": {}}})


def capture(
    run: Callable[[KlaviyoPusher], object], *, known: dict[str, str] | None = None, bulk_threshold: int = 50
) -> list[httpx.Request]:
    fake = CapturingKlaviyo(known)
    with httpx.Client(transport=httpx.MockTransport(fake)) as http:
        client = KlaviyoClient(
            "https://a.klaviyo.com", API_KEY, KLAVIYO_REVISION, http, sleep=lambda s: None, jitter=lambda b: 0.0
        )
        run(KlaviyoPusher(client, LISTS, bulk_threshold=bulk_threshold))
    return fake.requests


def capture_built(requests: list[kr.KlaviyoRequest]) -> list[httpx.Request]:
    fake = CapturingKlaviyo()
    with httpx.Client(transport=httpx.MockTransport(fake)) as http:
        client = KlaviyoClient("https://a.klaviyo.com", API_KEY, http=http, sleep=lambda s: None)
        for request in requests:
            client.send(request)
    return fake.requests


def _lookup_flood() -> list[httpx.Request]:
    changes = [change(n, entered=[], exited=["lapsed"]) for n in range(60)]
    known = {c.external_id: f"01KNOWN{n:019d}" for n, c in enumerate(changes[:40])}
    return capture(lambda p: p.push(changes), known=known)


def erasure(count: int = 2) -> ProfileErasure:
    """A redacted customer with a customer profile (Klaviyo id known) and a guest profile (id to look up)."""
    shop = "evergreen-demo.myshopify.com"
    return ProfileErasure(
        shop=shop,
        profiles=[
            ErasedProfile(external_id=f"{shop}/customer#{8_200_000_000 + n}", klaviyo_profile_id=f"01KE{n:022d}")
            for n in range(count - 1)
        ]
        + [ErasedProfile(external_id=f"{shop}/guest#shopper@example.com")],
        segments=["vip", "lapsed", "repeat"],
        requested_at=datetime(2026, 7, 15, 8, 0, tzinfo=UTC),
    )


def _erase_everything() -> list[httpx.Request]:
    gone = erasure()
    known = {gone.profiles[-1].external_id: "01KGUEST000000000000000000"}
    return capture(lambda p: p.erase(gone, delete_in_klaviyo=True), known=known)


def _list_move() -> list[httpx.Request]:
    """120 members move from one list to another; half of their Klaviyo ids must be looked up."""
    shop = "evergreen-demo.myshopify.com"
    members = [
        MemberListChange(
            n // 100, f"{shop}/customer#{8_300_000_000 + n}", f"01KM{n:022d}" if n % 2 else None, "Ab12Cd", ("Y6nRLr",)
        )
        for n in range(120)
    ]
    known = {m.external_id: f"01KL{n:022d}" for n, m in enumerate(members) if m.klaviyo_profile_id is None}
    return capture(lambda p: p.move_lists(members), known=known)


SCENARIOS: dict[str, Callable[[], list[httpx.Request]]] = {
    "list move: fill by external id, empty by Klaviyo id": _list_move,
    "erasure of a redacted customer, with Klaviyo's data-privacy deletion": _erase_everything,
    "trickle with every field": lambda: capture(lambda p: p.push([change(n) for n in range(3)])),
    "trickle with missing or unusable identifiers": lambda: capture(
        lambda p: p.push(
            [
                change(1, phone=None),
                change(2, phone="07700 900123"),
                change(3, email=None),
                change(4, email=None, phone=None),
                change(5, first_name=None, last_name=None),
                change(6, email="not-an-email"),
            ]
        )
    ),
    "trickle with many segments and unicode names": lambda: capture(
        lambda p: p.push(
            [
                change(
                    1,
                    segments=[f"segment_{i:02d}" for i in range(60)] + ["vip"],
                    entered=[f"segment_{i:02d}" for i in range(30)],
                    exited=["lapsed", *[f"gone_{i}" for i in range(10)]],
                    first_name="Zoë",
                    last_name="Ørsted-Núñez 山田",
                )
            ]
        )
    ),
    "trickle updating a known Klaviyo profile, and a 409's duplicate": lambda: [
        *capture(lambda p: p.push([change(1, klaviyo_profile_id="01KNOWNPROFILE0000000000001")])),
        *capture_built([kr.profile_import(change(2), "01DUPLICATEPROFILE00000000002")]),
    ],
    "trickle where the profile left every segment": lambda: capture(
        lambda p: p.push([change(1, segments=[], entered=[], exited=["vip", "repeat"])])
    ),
    "trickle with a naive and a non-UTC change time": lambda: capture(
        lambda p: p.push(
            [
                change(1, changed_at=datetime(2026, 7, 1, 8, 0)),
                change(2, changed_at=datetime(2026, 7, 1, 8, 0, tzinfo=timezone(timedelta(hours=-5)))),
            ]
        )
    ),
    "flood into bulk jobs with list relationships": lambda: capture(
        lambda p: p.push(
            [change(n, klaviyo_profile_id=f"01KP{n:022d}", phone=None if n % 3 else "+14155550123") for n in range(120)]
        )
    ),
    "audit reads: profiles with their properties, a list's member ids": lambda: capture_built(
        [
            kr.profile_segments_lookup([f"evergreen-demo.myshopify.com/customer#{n}" for n in range(50)]),
            kr.list_member_ids("Y6nRLr"),
            kr.list_member_ids("Y6nRLr", "bmV4dA"),
        ]
    ),
    "flood with fact properties beside the segments": lambda: capture(
        lambda p: p.push([change(n, properties=FACT_PROPERTIES) for n in range(60)])
    ),
    "flood of 2,000 profiles in one job": lambda: capture(
        lambda p: p.push([change(n, entered=[], exited=[]) for n in range(2_000)])
    ),
    "flood resolving Klaviyo ids by external id": _lookup_flood,
    "webhook resolving an engagement's Klaviyo profile id": lambda: capture_built(
        [kr.get_profile("01KPROFILEONLY00000000000A")]
    ),
    "list calls and bulk events at their limits": lambda: capture_built(
        [
            kr.add_profiles_to_list("Y6nRLr", [f"01KP{n:022d}" for n in range(1_000)]),
            kr.remove_profiles_from_list("Y6nRLr", [f"01KP{n:022d}" for n in range(1_000)]),
            kr.list_fill_import("Y6nRLr", [change(n).external_id for n in range(kr.MAX_BULK_PROFILES)]),
            kr.bulk_create_events(
                [kr.ProfileEvents(c, kr.segment_events(c)) for c in (change(n, exited=[]) for n in range(1_000))]
            ),
            kr.profile_lookup([change(n).external_id for n in range(kr.MAX_PROFILE_LOOKUP)]),
            kr.get_profile_import_job("01JOB0000000000000000000001"),
            kr.profile_import_errors("01JOB0000000000000000000001"),
            kr.profile_import_errors("01JOB0000000000000000000001", cursor="bmV4dA"),
        ]
    ),
}


@dataclass(frozen=True)
class Wire:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes | None


def on_the_wire(request: httpx.Request) -> Wire:
    return Wire(
        request.method, request.url.path, dict(request.url.params), dict(request.headers), request.content or None
    )


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_request_conforms_to_klaviyos_spec(spec: KlaviyoSpec, scenario: str) -> None:
    captured = SCENARIOS[scenario]()
    assert captured, "the scenario made no request"
    problems: dict[str, list[str]] = {}
    for position, request in enumerate(captured):
        wire = on_the_wire(request)
        errors = spec.validate(wire.method, wire.path, query=wire.query, headers=wire.headers, body=wire.body)
        if errors:
            problems[f"#{position} {wire.method} {wire.path}"] = errors[:5]
    assert problems == {}


def test_the_scenarios_cover_every_operation_sync_uses(spec: KlaviyoSpec) -> None:
    seen: set[str] = set()
    for make in SCENARIOS.values():
        for request in make():
            operation = spec.operation(request.method, request.url.path)
            assert operation is not None, f"{request.method} {request.url.path} is not in the spec"
            seen.add(str(operation["operationId"]))
    assert seen == set(kr.RATE_LIMITS)


def test_the_rate_limits_we_honour_are_klaviyos(spec: KlaviyoSpec) -> None:
    ours = {op: (limit.burst_per_second, limit.steady_per_minute) for op, limit in kr.RATE_LIMITS.items()}
    theirs = {op: spec.rate_limit(op) for op in kr.RATE_LIMITS}
    assert ours == theirs


def test_the_revision_we_send_is_the_specs(spec: KlaviyoSpec) -> None:
    assert spec.revision == KLAVIYO_REVISION


def test_the_spec_check_catches_our_likely_mistakes(spec: KlaviyoSpec) -> None:
    good = on_the_wire(capture_built([kr.profile_import(change(1))])[0])
    assert spec.validate(good.method, good.path, query=good.query, headers=good.headers, body=good.body) == []

    def errors(*, headers: dict[str, str] | None = None, body: Any = None, path: str | None = None) -> list[str]:
        raw = json.dumps(body).encode() if body is not None else good.body
        return spec.validate(
            good.method, path or good.path, query=good.query, headers=headers or good.headers, body=raw
        )

    attributes = json.loads(good.body or b"{}")["data"]["attributes"]
    assert errors(body={"data": {"type": "profile", "attributes": {**attributes, "phone": "+1"}}})
    assert errors(body={"data": {"type": "profiles", "attributes": attributes}})
    assert errors(body={"data": {"type": "profile", "attributes": {**attributes, "email": 42}}})
    assert errors(headers={**good.headers, "revision": "2023-02-22"})
    assert errors(headers={k: v for k, v in good.headers.items() if k != "content-type"})
    assert errors(headers={k: v for k, v in good.headers.items() if k != "authorization"})
    assert errors(path="/api/profile-imports")


@pytest.fixture(scope="module")
def checked_sandbox(spec: KlaviyoSpec) -> Iterator[Any]:
    server = start_sandbox(port=0, spec_path=SPEC_PATH)
    yield server
    server.stop()


def test_the_sandbox_checks_requests_and_answers_as_the_spec_says(spec: KlaviyoSpec, checked_sandbox: Any) -> None:
    checked_sandbox.clear()
    checked_sandbox.fail_next(429, count=1, retry_after=1)
    changes = [change(n) for n in range(3)]
    flood = [change(100 + n, exited=[]) for n in range(60)]
    requests = [
        kr.profile_import(changes[0]),
        kr.profile_import(changes[0]),  # 429 first, then 201
        kr.profile_bulk_import(flood, ["Y6nRLr"]),
        kr.create_event(changes[0], kr.segment_events(changes[0])[0]),
        kr.bulk_create_events([kr.ProfileEvents(c, kr.segment_events(c)) for c in changes]),
        kr.add_profiles_to_list("Y6nRLr", ["01KP0000000000000000000001"]),
        kr.remove_profiles_from_list("Xk9Qp2", ["01KP0000000000000000000001"]),
        kr.profile_lookup([c.external_id for c in flood[:10]]),
        kr.unset_evergreen_properties(flood[0].external_id, "01KP0000000000000000000001"),
        kr.request_profile_deletion("01KP0000000000000000000001"),
    ]
    answers: list[tuple[kr.KlaviyoRequest, httpx.Response]] = []
    with httpx.Client() as http:
        for request in requests:
            answers.append(
                (
                    request,
                    http.request(
                        request.method,
                        checked_sandbox.url + request.path,
                        params=dict(request.query),
                        content=request.body_bytes(),
                        headers=_headers(request),
                    ),
                )
            )
    for request, response in answers:
        problems = spec.validate_response(
            request.method,
            request.path,
            response.status_code,
            query=dict(request.query),
            headers=_headers(request),
            body=request.body_bytes(),
            response_body=response.content,
            response_content_type=response.headers.get("content-type", "application/vnd.api+json"),
        )
        assert problems == [], f"{request.method} {request.path} -> {response.status_code}"
    assert [r.status_code for _, r in answers] == [429, 201, 202, 202, 202, 204, 204, 200, 200, 202]
    records = checked_sandbox.requests()
    assert all(r["spec_checked"] for r in records)
    assert [r["spec_errors"] for r in records if not r["spec_valid"]] == []


def test_the_sandbox_flags_a_request_that_breaks_the_spec(checked_sandbox: Any) -> None:
    checked_sandbox.clear()
    with httpx.Client() as http:
        http.post(
            checked_sandbox.url + "/api/profile-import",
            json={"data": {"type": "profile", "attributes": {"phone": "+14155550123"}}},
            headers={"revision": "2026-07-15", "Authorization": f"Klaviyo-API-Key {API_KEY}"},
        )
    [record] = checked_sandbox.requests()
    assert record["spec_valid"] is False
    assert any("phone" in error for error in record["spec_errors"])
    assert any("content-type" in error for error in record["spec_errors"])


def _headers(request: kr.KlaviyoRequest) -> dict[str, str]:
    headers = {
        "Authorization": f"Klaviyo-API-Key {API_KEY}",
        "revision": KLAVIYO_REVISION,
        "accept": "application/vnd.api+json",
    }
    if request.json is not None:
        headers["content-type"] = "application/vnd.api+json"
    return headers
