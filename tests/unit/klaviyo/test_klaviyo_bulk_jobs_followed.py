"""A flood's bulk import jobs are followed to their end; what Klaviyo did not import is retried or poison.

Klaviyo is imitated at the HTTP transport (klaviyo_fakes.FakeKlaviyo); time is fake (polling sleeps move it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evergreen.domain.changes import SegmentChange
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.jobs import JobFollow
from evergreen.klaviyo.pusher import KlaviyoPusher
from tests.unit.klaviyo.klaviyo_fakes import FakeKlaviyo, FakeTime

Factory = Callable[..., SegmentChange]


def pusher(client: KlaviyoClient, fake_time: FakeTime, **follow: Any) -> KlaviyoPusher:
    return KlaviyoPusher(client, {}, job_follow=JobFollow(clock=fake_time.clock, sleep=fake_time.sleep, **follow))


def refusal(position: int, field: str, code: str = "invalid") -> dict[str, Any]:
    pointer = f"/data/attributes/profiles/data/{position}/attributes/{field}"
    return {"type": "import-error", "id": f"E{position}", "attributes": {"code": code, "source": {"pointer": pointer}}}


def job_reads(klaviyo: FakeKlaviyo) -> list[str]:
    return [sent.path for sent in klaviyo.calls("GET", "/api/profile-bulk-import-jobs/")]


def test_a_job_is_read_back_until_complete_and_only_then_do_its_events_go(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.job_statuses = ["queued", "processing", "processing"]
    changes = [change_factory(n, exited=[]) for n in range(60)]

    result = pusher(client, fake_time).push(changes)

    assert result.failed == set()
    assert job_reads(klaviyo) == ["/api/profile-bulk-import-jobs/JOB1"] * 4
    assert fake_time.sleeps == [0.5, 1.0, 2.0], "polls back off"
    paths = [sent.path for sent in klaviyo.sent]
    assert paths.index("/api/event-bulk-create-jobs") > max(i for i, p in enumerate(paths) if p.endswith("/JOB1"))
    assert result.jobs_followed == 1
    assert set(result.job_waits_s.values()) == {3.5}, "acceptance to completion seen, per change"


def test_a_job_still_running_when_time_is_up_is_handed_back_for_retry_not_poisoned(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.job_statuses = ["processing"] * 100
    changes = [change_factory(n) for n in range(60)]

    result = pusher(client, fake_time).push(changes, time_left_s=lambda: 10.0)

    assert result.failed == set(range(60))
    assert result.poison == set()
    assert result.errors[0] == "bulk_import_profiles: job still running"
    assert result.jobs_unfinished == 1
    assert sum(fake_time.sleeps) <= 10.0
    assert klaviyo.calls("POST", "/api/event-bulk-create-jobs") == [], "no events for profiles not imported yet"


def test_a_cancelled_job_fails_every_change_it_carried_for_retry(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.job_statuses = ["queued", "cancelled"]

    result = pusher(client, fake_time).push([change_factory(n) for n in range(60)])

    assert result.failed == set(range(60)) and result.poison == set()
    assert result.errors[59] == "bulk_import_profiles: job cancelled"


def test_import_errors_are_mapped_to_their_changes_invalid_values_poison_the_rest_retried(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.import_errors = [
        refusal(3, "email"),
        refusal(7, "phone_number"),
        refusal(9, "email", code="internal_error"),
    ]
    changes = [change_factory(n) for n in range(60)]

    result = pusher(client, fake_time).push(changes)

    assert result.failed == {3, 7, 9}
    assert result.poison == {3, 7}
    assert result.errors[3] == "bulk_import_profiles: invalid (email)"
    assert result.errors[7] == "bulk_import_profiles: invalid (phone_number)"
    assert result.errors[9] == "bulk_import_profiles: internal_error (email)"
    assert result.profiles_refused == 2
    assert "customer3@example.com" not in str(result.errors)
    assert result.profiles_upserted == 57


def test_an_import_error_naming_no_profile_of_the_job_retries_the_whole_job(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.import_errors = [{"type": "import-error", "id": "E", "attributes": {"code": "invalid", "source": {}}}]

    result = pusher(client, fake_time).push([change_factory(n) for n in range(60)])

    assert result.failed == set(range(60)) and result.poison == set()
    assert result.errors[0] == "get_errors_for_bulk_import_profiles_job: errors not attributable"


def test_a_phone_klaviyo_would_refuse_is_left_out_and_counted(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    changes = [change_factory(n, phone="+1 555 000 0000" if n < 3 else "+1 415 555 0123") for n in range(60)]

    result = pusher(client, fake_time).push(changes)

    [job] = klaviyo.calls("POST", "/api/profile-bulk-import-jobs")
    sent = job.json["data"]["attributes"]["profiles"]["data"]
    assert [profile["attributes"].get("phone_number") for profile in sent[:4]] == [None, None, None, "+14155550123"]
    assert result.phones_left_out == 3
    assert result.failed == set()
