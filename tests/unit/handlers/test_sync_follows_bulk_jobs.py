"""A bulk job's 202 is not the end: sync follows every job until Klaviyo has imported it, and only then counts it.

The real SegmentSync handler on in-process moto (sync_rig.py: the template's queues, simulated queue time), pushing
to the Klaviyo sandbox over HTTP, whose bulk jobs go queued -> processing -> complete over real time, refuse the
profiles Klaviyo would refuse, and can be told to cancel a job after accepting it. Every request the sandbox gets
is checked against Klaviyo's OpenAPI spec when ../shared holds it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from evergreen.domain.changes import SegmentChange
from evergreen_cli.sandboxes.klaviyo_api import SandboxServer, start_sandbox
from tests.unit.handlers.sync_rig import Rig, sync_rig

JOB_SECONDS = 0.6
REFUSED_PHONE = "+1 555 000 0000"
"""Seven to fifteen digits after a `+`, but no number libphonenumber (so Klaviyo) accepts."""
GOOD_PHONE = "+1 613 555 0123"


@pytest.fixture(scope="module")
def klaviyo() -> Iterator[SandboxServer]:
    with start_sandbox(port=0, job_seconds=JOB_SECONDS) as server:
        yield server


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch, klaviyo: SandboxServer) -> Iterator[Rig]:
    klaviyo.clear()
    klaviyo.jobs(seconds=JOB_SECONDS)
    with httpx.Client() as http, sync_rig(monkeypatch, klaviyo.url, http) as built:
        yield built


class JobWatch:
    """Sees every job status Klaviyo answers, with how many of the changes the table had marked synced then."""

    def __init__(self, rig: Rig, changes: list[SegmentChange]) -> None:
        self.rig = rig
        self.changes = changes
        self.seen: list[tuple[str, int]] = []

    def __call__(self, response: httpx.Response) -> None:
        path = response.request.url.path
        polled = path.startswith("/api/profile-bulk-import-jobs/") and not path.endswith("/import-errors")
        if response.request.method == "GET" and polled:
            response.read()
            status = response.json()["data"]["attributes"]["status"]
            self.seen.append((status, len(self.rig.synced(self.changes))))


def enqueue(rig: Rig, count: int, **by_number: dict[str, Any]) -> list[SegmentChange]:
    """`count` changed customers with a phone Klaviyo accepts, but for the fields `by_number` overrides."""
    return rig.enqueue_changes(count, fields=lambda number: {"phone": GOOD_PHONE, **by_number.get(str(number), {})})


def job_id(klaviyo: SandboxServer) -> str:
    accepted = [r for r in klaviyo.requests() if r["path"] == "/api/profile-bulk-import-jobs" and r["status"] == 202]
    polls = [r["path"] for r in klaviyo.requests() if r["path"].startswith("/api/profile-bulk-import-jobs/")]
    assert accepted and polls
    return polls[0].rsplit("/", 1)[-1]


def requests_to(klaviyo: SandboxServer, prefix: str) -> list[dict[str, Any]]:
    return [request for request in klaviyo.requests() if request["path"].startswith(prefix)]


def test_three_refused_phones_in_500_leave_the_import_and_all_500_sync_once_the_job_completes(
    rig: Rig, klaviyo: SandboxServer
) -> None:
    refused = {"7": {"phone": REFUSED_PHONE}, "250": {"phone": "+1 555 000 0001"}, "499": {"phone": "+44 1"}}
    changes = enqueue(rig, 500, **refused)
    watch = JobWatch(rig, changes)
    rig.use_klaviyo(klaviyo.url, httpx.Client(event_hooks={"response": [watch]}))

    rig.poll()

    [job] = requests_to(klaviyo, "/api/profile-bulk-import-jobs")[:1]
    sent = job["json"]["data"]["attributes"]["profiles"]["data"]
    assert len(sent) == 500
    phones = {profile["attributes"]["external_id"]: profile["attributes"].get("phone_number") for profile in sent}
    left_out = {change.external_id for change in changes if change.profile_key.removeprefix("customer#") in refused}
    assert {external_id for external_id, phone in phones.items() if phone is None} == left_out
    assert set(phones.values()) - {None} == {"+16135550123"}

    assert [status for status, _ in watch.seen][-1] == "complete"
    assert watch.seen[0][0] in ("queued", "processing"), "the job was followed while Klaviyo worked on it"
    assert all(synced == 0 for _, synced in watch.seen), "nothing is marked synced before the job completes"
    assert rig.synced(changes) == {change.external_id for change in changes}

    with klaviyo.state.lock:
        profiles = {stored["external_id"]: stored for stored in klaviyo.state.profiles.values()}
    assert len(profiles) == 500
    assert all(profiles[external_id]["properties"]["evergreen_segments"] for external_id in profiles)
    assert {external_id for external_id, stored in profiles.items() if "phone_number" not in stored} == left_out
    assert rig.dead_letters() == []
    checked = [request for request in klaviyo.requests() if request["spec_checked"]]
    if klaviyo.state.spec is not None:
        assert {request["path"] for request in checked} >= {f"/api/profile-bulk-import-jobs/{job_id(klaviyo)}"}
    assert all(request["spec_valid"] for request in checked), [r["spec_errors"] for r in checked][:3]


def test_a_job_klaviyo_cancels_after_accepting_it_is_retried_whole_and_reaches_klaviyo_once_it_recovers(
    rig: Rig, klaviyo: SandboxServer
) -> None:
    changes = enqueue(rig, 200)
    klaviyo.jobs(cancel=1)

    rig.poll()

    assert rig.synced(changes) == set(), "a cancelled job imported nothing, so nothing counts as synced"
    assert rig.depth(rig.queue_url) == 200, "every change of the job waits for its retry"
    with klaviyo.state.lock:
        assert klaviyo.state.profiles == {}
    events = requests_to(klaviyo, "/api/event-bulk-create-jobs")
    assert events == [], "no events go for profiles Klaviyo did not import"

    rig.clock.advance(61)
    while rig.poll():
        pass

    assert rig.synced(changes) == {change.external_id for change in changes}
    with klaviyo.state.lock:
        synced = {stored["external_id"] for stored in klaviyo.state.profiles.values()}
    assert synced == {change.external_id for change in changes}
    assert rig.depth(rig.queue_url) == 0
    assert rig.dead_letters() == []


def test_a_profile_klaviyo_refuses_for_good_is_dead_lettered_with_its_reason_and_the_rest_sync(
    rig: Rig, klaviyo: SandboxServer
) -> None:
    changes = enqueue(rig, 60, **{"3": {"email": "ada@localhost", "email_normalized": "ada@localhost"}})

    rig.poll()

    refused = next(change for change in changes if change.profile_key == "customer#3")
    assert rig.synced(changes) == {change.external_id for change in changes} - {refused.external_id}
    [dead] = rig.dead_letters()
    assert json.loads(dead["Body"])["profile_key"] == "customer#3"
    reason = dead["MessageAttributes"]["reason"]["StringValue"]
    assert reason == "bulk_import_profiles: invalid (email)"
    assert "ada@" not in reason
    assert rig.depth(rig.queue_url) == 0
