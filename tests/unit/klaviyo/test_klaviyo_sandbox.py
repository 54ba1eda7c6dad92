"""The local Klaviyo sandbox answers like Klaviyo, records what it was sent, and fails on request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from evergreen.domain.changes import SegmentChange
from evergreen.klaviyo import requests as kr
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.errors import KlaviyoRejected
from evergreen.klaviyo.pusher import KlaviyoPusher
from evergreen_cli.sandboxes.klaviyo_api import SandboxServer, fake_profile_id, start_sandbox
from tests.unit.klaviyo.klaviyo_fakes import API_KEY, FakeTime

Factory = Callable[..., SegmentChange]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    server = start_sandbox(port=0, validate=False)
    yield server
    server.stop()


@pytest.fixture
def http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    sandbox.clear()
    with httpx.Client(base_url=sandbox.url) as client:
        yield client


@pytest.fixture
def sandbox_client(sandbox: SandboxServer, fake_time: FakeTime, http: httpx.Client) -> KlaviyoClient:
    return KlaviyoClient(
        sandbox.url, API_KEY, http=http, sleep=fake_time.sleep, clock=fake_time.clock, jitter=lambda b: 0.0
    )


def test_a_push_is_answered_like_klaviyo_and_recorded(
    sandbox_client: KlaviyoClient, http: httpx.Client, change_factory: Factory
) -> None:
    result = KlaviyoPusher(sandbox_client, {"vip": "LIST_VIP", "lapsed": "LIST_LAPSED"}).push([change_factory(1)])
    assert result.failed == set()

    records = http.get("/_sandbox/requests").json()
    assert [(r["method"], r["path"], r["status"]) for r in records] == [
        ("POST", "/api/profile-import", 201),
        ("POST", "/api/events", 202),
        ("POST", "/api/events", 202),
        ("POST", "/api/lists/LIST_VIP/relationships/profiles", 204),
        ("DELETE", "/api/lists/LIST_LAPSED/relationships/profiles", 204),
    ]
    first = records[0]
    assert first["headers"]["Authorization"] == "Klaviyo-API-Key <redacted>"
    assert API_KEY not in str(records)
    assert first["query"] == {"fields[profile]": "external_id"}
    assert first["json"]["data"]["attributes"]["properties"]["evergreen_segments"] == ["engaged", "repeat", "vip"]
    assert first["spec_checked"] is False

    state = http.get("/_sandbox/state").json()
    profile_id = result.klaviyo_profile_ids[0]
    assert state["lists"]["LIST_VIP"] == [profile_id]
    assert state["lists"].get("LIST_LAPSED", []) == []
    assert {e["metric"] for e in state["events"]} == {"Evergreen Entered Segment", "Evergreen Exited Segment"}


def test_the_same_profile_gets_the_same_id_created_then_updated(
    sandbox_client: KlaviyoClient, change_factory: Factory
) -> None:
    first = sandbox_client.send(kr.profile_import(change_factory(1)))
    again = sandbox_client.send(kr.profile_import(change_factory(1, version=5)))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["data"]["id"] == again.json()["data"]["id"] == fake_profile_id(change_factory(1).external_id)
    assert len(first.json()["data"]["id"]) == 26


def test_a_retried_event_is_kept_once(
    sandbox_client: KlaviyoClient, http: httpx.Client, change_factory: Factory
) -> None:
    change = change_factory(1)
    event = kr.segment_events(change)[0]
    sandbox_client.send(kr.create_event(change, event))
    sandbox_client.send(kr.create_event(change, event))
    assert len(http.get("/_sandbox/state").json()["events"]) == 1


def test_injected_429s_are_waited_out_with_retry_after(
    sandbox_client: KlaviyoClient, http: httpx.Client, fake_time: FakeTime, change_factory: Factory
) -> None:
    assert http.post("/_sandbox/fail", json={"status": 429, "count": 2, "retry_after": 1}).status_code == 200
    response = sandbox_client.send(kr.profile_import(change_factory(1)))
    assert response.status_code == 201
    assert fake_time.sleeps == [1.0, 1.0]
    assert sandbox_client.throttled_count == 2
    assert [r["status"] for r in http.get("/_sandbox/requests").json()] == [429, 429, 201]


def test_injected_5xx_are_retried(
    sandbox: SandboxServer, sandbox_client: KlaviyoClient, fake_time: FakeTime, change_factory: Factory
) -> None:
    sandbox.fail_next(503, count=1)
    assert sandbox_client.send(kr.profile_import(change_factory(1))).status_code == 201
    assert fake_time.sleeps == [0.5]


def test_an_unknown_path_is_a_json_api_404(sandbox_client: KlaviyoClient, http: httpx.Client) -> None:
    with pytest.raises(KlaviyoRejected) as raised:
        sandbox_client.send(kr.KlaviyoRequest("GET", "/api/nothing-here", operation="nothing"))
    assert raised.value.status == 404
    assert raised.value.errors[0].code == "not_found"
    assert http.get("/api/nothing-here").json()["errors"][0]["status"] == 404


def test_a_flood_lands_in_bulk_jobs_and_list_membership(
    sandbox_client: KlaviyoClient, http: httpx.Client, change_factory: Factory
) -> None:
    changes = [change_factory(n, exited=[]) for n in range(60)]
    result = KlaviyoPusher(sandbox_client, {"vip": "LIST_VIP"}).push(changes)
    assert result.failed == set()
    records = http.get("/_sandbox/requests").json()
    job_id = records[1]["path"].rsplit("/", 1)[-1]
    assert [(r["path"], r["status"]) for r in records] == [
        ("/api/profile-bulk-import-jobs", 202),
        (f"/api/profile-bulk-import-jobs/{job_id}", 200),
        ("/api/event-bulk-create-jobs", 202),
    ], "the job is read back until it is complete before its events go"
    state = http.get("/_sandbox/state").json()
    assert len(state["lists"]["LIST_VIP"]) == 60
    assert len(state["events"]) == 60


def test_clearing_forgets_requests_and_state(
    sandbox_client: KlaviyoClient, http: httpx.Client, change_factory: Factory
) -> None:
    sandbox_client.send(kr.profile_import(change_factory(1)))
    assert http.delete("/_sandbox/requests").status_code == 204
    assert http.get("/_sandbox/requests").json() == []
    assert http.get("/_sandbox/state").json()["profiles"] == {}


def test_the_sandbox_answers_get_profile_with_the_fields_asked_for_and_404_for_an_unknown_id(
    sandbox_client: KlaviyoClient, change_factory: Factory
) -> None:
    change = change_factory(1)
    created = sandbox_client.send(kr.profile_import(change)).json()["data"]["id"]

    found = sandbox_client.get_profile(created)

    assert found is not None and found["id"] == created
    assert set(found["attributes"]) == {"external_id", "email", "phone_number"}
    assert found["attributes"]["external_id"] == change.external_id
    assert sandbox_client.get_profile("01KNOBODY000000000000000000") is None


# --- latency and timeout injection -----------------------------------------------------------------------------


def test_an_injected_delay_outlasts_a_clients_read_timeout_and_then_the_sandbox_answers_as_usual(
    sandbox: SandboxServer, http: httpx.Client, change_factory: Factory
) -> None:
    answer = http.post("/_sandbox/fail", json={"delay_ms": 3000, "count": 1})
    assert answer.status_code == 200
    assert answer.json()["status"] is None and answer.json()["delay_ms"] == 3000
    body = kr.profile_import(change_factory(1)).json
    with pytest.raises(httpx.ReadTimeout):
        http.post("/api/profile-import", json=body, timeout=0.2)
    assert http.post("/api/profile-import", json=body, timeout=30).status_code == 200
    delayed, answered = sandbox.requests()
    assert delayed["fault"]["delay_ms"] == 3000 and delayed["status"] == 201
    assert "fault" not in answered


def test_a_delayed_request_is_answered_in_full_when_the_client_waits(
    sandbox: SandboxServer, http: httpx.Client, change_factory: Factory
) -> None:
    sandbox.fail_next(delay_ms=50)
    response = http.post("/api/profile-import", json=kr.profile_import(change_factory(1)).json, timeout=30)
    assert response.status_code == 201
    assert response.json()["data"]["type"] == "profile"


def test_a_delay_can_come_with_an_error_status(http: httpx.Client, change_factory: Factory) -> None:
    http.post("/_sandbox/fail", json={"status": 503, "delay_ms": 50})
    response = http.post("/api/profile-import", json=kr.profile_import(change_factory(1)).json, timeout=30)
    assert response.status_code == 503


def test_a_hung_request_gets_no_answer_while_other_requests_are_served(
    sandbox: SandboxServer, http: httpx.Client, change_factory: Factory
) -> None:
    assert http.post("/_sandbox/fail", json={"hang": True}).json()["hang"] is True
    body = kr.profile_import(change_factory(1)).json
    with pytest.raises(httpx.ReadTimeout):
        http.post("/api/profile-import", json=body, timeout=0.3)
    assert http.post("/api/profile-import", json=body, timeout=30).status_code == 201
    hung, served = sandbox.requests()
    assert hung["status"] is None and hung["fault"]["hang"] is True
    assert served["status"] == 201


def test_a_hang_ends_with_the_connection_closed_unanswered_after_hang_ms(
    sandbox: SandboxServer, http: httpx.Client, change_factory: Factory
) -> None:
    http.post("/_sandbox/fail", json={"hang": True, "hang_ms": 100})
    with httpx.Client(timeout=30) as patient, pytest.raises(httpx.RemoteProtocolError):
        patient.post(f"{sandbox.url}/api/profile-import", json=kr.profile_import(change_factory(1)).json)


def test_clearing_the_sandbox_lets_go_of_hung_requests(
    sandbox: SandboxServer, http: httpx.Client, change_factory: Factory
) -> None:
    sandbox.fail_next(hang=True, hang_ms=120_000)
    outcome: list[BaseException] = []

    def patient_client() -> None:
        with httpx.Client(timeout=60) as patient:
            try:
                patient.post(f"{sandbox.url}/api/profile-import", json=kr.profile_import(change_factory(1)).json)
            except httpx.HTTPError as error:
                outcome.append(error)

    waiting = threading.Thread(target=patient_client)
    waiting.start()
    while not sandbox.requests():
        time.sleep(0.01)
    sandbox.clear()
    waiting.join(timeout=30)
    assert not waiting.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.RemoteProtocolError)


@pytest.mark.parametrize(
    "fault", [{"status": 200}, {"status": 99}, {"delay_ms": -1}, {"hang": True, "hang_ms": -5}, {"status": "x"}]
)
def test_a_fault_the_sandbox_cannot_inject_is_refused(http: httpx.Client, fault: dict[str, object]) -> None:
    assert http.post("/_sandbox/fail", json=fault).status_code == 400
    assert http.post("/_sandbox/fail", json={"count": 0}).status_code == 200
