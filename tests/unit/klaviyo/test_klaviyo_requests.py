"""Request builders: what each Klaviyo call carries, and how floods are cut into jobs."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from evergreen.domain.changes import SegmentChange
from evergreen.klaviyo import requests as kr

Factory = Callable[..., SegmentChange]


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for child in value.values() for k in _keys(child)}
    if isinstance(value, list):
        return {k for child in value for k in _keys(child)}
    return set()


def test_a_profile_upsert_carries_identifiers_names_and_the_sorted_segment_snapshot(change_factory: Factory) -> None:
    change = change_factory(segments=["vip", "engaged", "repeat", "vip"])
    request = kr.profile_import(change)
    assert (request.method, request.path, request.operation) == ("POST", "/api/profile-import", kr.OP_PROFILE_IMPORT)
    assert request.json == {
        "data": {
            "type": "profile",
            "attributes": {
                "email": "customer1@example.com",
                "phone_number": "+14155550123",
                "external_id": "evergreen-demo.myshopify.com/customer#7000000001",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "properties": {"evergreen_segments": ["engaged", "repeat", "vip"], "evergreen_synced_version": 4},
            },
        }
    }


def test_a_profile_with_no_segments_left_is_synced_with_an_empty_list(change_factory: Factory) -> None:
    request = kr.profile_import(change_factory(segments=[], entered=[], exited=["vip"]))
    assert request.json is not None
    assert request.json["data"]["attributes"]["properties"]["evergreen_segments"] == []


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("+14155550123", "+14155550123"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 (415) 555-0123", "+14155550123"),
        ("4155550123", None),
        ("(415) 555-0123", None),
        ("+0123456789", None),
        ("+1234", None),
        ("+1 555 000 0000", None),
        ("+44 7911 123456", "+447911123456"),
        ("+1415555012345678", None),
        ("", None),
        (None, None),
    ],
)
def test_only_e164_phone_numbers_are_sent(change_factory: Factory, given: str | None, sent: str | None) -> None:
    attributes = kr.profile_attributes(change_factory(phone=given))
    assert attributes.get("phone_number") == sent


def test_missing_fields_are_left_out_so_klaviyo_keeps_what_it_has(change_factory: Factory) -> None:
    attributes = kr.profile_attributes(change_factory(email=None, phone=None, first_name=None, last_name="  "))
    assert set(attributes) == {"external_id", "properties"}


def test_a_malformed_email_is_not_sent(change_factory: Factory) -> None:
    assert "email" not in kr.profile_attributes(change_factory(email="not an email"))
    assert kr.profile_attributes(change_factory(email=" Ada@Example.com "))["email"] == "Ada@Example.com"


def test_no_request_ever_carries_consent_or_subscriptions(change_factory: Factory) -> None:
    change = change_factory()
    events = kr.segment_events(change)
    requests = [
        kr.profile_import(change),
        kr.profile_bulk_import([change], ["LIST1"]),
        kr.create_event(change, events[0], "K1"),
        kr.bulk_create_events([kr.ProfileEvents(change, events, "K1")]),
        kr.add_profiles_to_list("LIST1", ["K1"]),
    ]
    for request in requests:
        keys = {key.lower() for key in _keys(request.json)}
        assert not {k for k in keys if "consent" in k or "subscri" in k}, request.path


def test_entered_and_exited_events_have_stable_unique_ids_and_the_change_time(change_factory: Factory) -> None:
    moment = datetime(2026, 7, 1, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    change = change_factory(changed_at=moment, entered=["vip", "big_spender"], exited=["lapsed"])
    events = kr.segment_events(change)
    assert events == (
        kr.SegmentEvent("big_spender", "entered"),
        kr.SegmentEvent("vip", "entered"),
        kr.SegmentEvent("lapsed", "exited"),
    )
    request = kr.create_event(change, events[2])
    assert request.json is not None
    attributes = request.json["data"]["attributes"]
    assert attributes["metric"]["data"]["attributes"]["name"] == "Evergreen Exited Segment"
    assert attributes["properties"] == {"segment": "lapsed"}
    assert attributes["time"] == "2026-07-01T09:30:00+00:00"
    assert attributes["unique_id"] == change.event_unique_id("lapsed", "exited")
    assert kr.create_event(change, events[2]).json == request.json  # a retry is the same event


def test_an_event_names_its_profile_by_identifiers_only(change_factory: Factory) -> None:
    change = change_factory()
    request = kr.create_event(change, kr.segment_events(change)[0], "01PROFILE")
    assert request.json is not None
    profile = request.json["data"]["attributes"]["profile"]["data"]
    assert profile["id"] == "01PROFILE"
    assert set(profile["attributes"]) == {"email", "phone_number", "external_id"}


def test_a_bulk_profile_job_adds_everyone_to_its_lists(change_factory: Factory) -> None:
    request = kr.profile_bulk_import([change_factory(1), change_factory(2)], ["L2", "L1", "L1"])
    assert request.json is not None
    job = request.json["data"]
    assert job["type"] == "profile-bulk-import-job"
    assert len(job["attributes"]["profiles"]["data"]) == 2
    assert job["relationships"] == {"lists": {"data": [{"type": "list", "id": "L1"}, {"type": "list", "id": "L2"}]}}
    assert "relationships" not in (kr.profile_bulk_import([change_factory(1)]).json or {})["data"]


def test_builders_refuse_batches_klaviyo_would_refuse(change_factory: Factory) -> None:
    with pytest.raises(ValueError, match="1000"):
        kr.add_profiles_to_list("L1", [f"K{i}" for i in range(1_001)])
    with pytest.raises(ValueError):
        kr.remove_profiles_from_list("L1", [])
    with pytest.raises(ValueError):
        kr.add_profiles_to_list("../L1", ["K1"])
    change = change_factory()
    many = kr.ProfileEvents(change, tuple(kr.SegmentEvent(f"s{i}", "entered") for i in range(1_001)))
    with pytest.raises(ValueError, match="1000"):
        kr.bulk_create_events([many])
    with pytest.raises(ValueError):
        kr.profile_bulk_import([])


def test_list_calls_carry_each_profile_once() -> None:
    request = kr.add_profiles_to_list("L1", ["K1", "K2", "K1"])
    assert request.json == {"data": [{"type": "profile", "id": "K1"}, {"type": "profile", "id": "K2"}]}
    assert request.path == "/api/lists/L1/relationships/profiles"
    assert kr.remove_profiles_from_list("L1", ["K1"]).method == "DELETE"


def test_a_profile_lookup_filters_on_external_ids() -> None:
    request = kr.profile_lookup(["shop/customer#1", "shop/customer#2"])
    assert request.method == "GET"
    assert request.query["filter"] == 'any(external_id,["shop/customer#1","shop/customer#2"])'
    with pytest.raises(ValueError):
        kr.profile_lookup(['shop/"quoted"'])
    assert not kr.filterable_external_id('a"b')


def test_bulk_profile_jobs_hold_at_most_10000_profiles(change_factory: Factory) -> None:
    changes = [change_factory(i) for i in range(10_001)]
    jobs = kr.plan_bulk_profile_jobs(changes)
    assert [len(job) for job in jobs] == [10_000, 1]
    assert [i for job in jobs for i in job] == list(range(10_001))


def test_bulk_profile_jobs_stay_under_5_mb(change_factory: Factory) -> None:
    changes = [change_factory(i, first_name="A" * 1_500) for i in range(4_000)]
    jobs = kr.plan_bulk_profile_jobs(changes)
    assert len(jobs) >= 2
    for job in jobs:
        body = kr.profile_bulk_import([changes[i] for i in job], ["LIST1"]).body_bytes()
        assert body is not None
        assert len(body) <= kr.MAX_BULK_PAYLOAD_BYTES


def test_bulk_event_jobs_hold_at_most_1000_events(change_factory: Factory) -> None:
    entries = [
        kr.ProfileEvents(change, kr.segment_events(change))
        for change in (change_factory(i, entered=["vip", "repeat"], exited=["lapsed"]) for i in range(700))
    ]
    jobs = kr.plan_bulk_event_jobs(entries)
    counts = [sum(len(entry.events) for entry in job) for job in jobs]
    assert all(count <= 1_000 for count in counts)
    assert sum(counts) == 2_100
    assert len(jobs) == 3
    for job in jobs:
        kr.bulk_create_events(job)  # each one is buildable


def test_pack_splits_by_count_and_by_size() -> None:
    assert kr.pack([1, 2, 3, 4, 5], max_count=2) == [[1, 2], [3, 4], [5]]
    assert kr.pack(["aa", "bb", "cccc", "d"], max_count=10, max_bytes=4, size_of=len) == [
        ["aa", "bb"],
        ["cccc"],
        ["d"],
    ]
    assert kr.pack([], max_count=3) == []


def test_the_body_is_compact_utf8_json(change_factory: Factory) -> None:
    request = kr.profile_import(change_factory(first_name="Zoë"))
    body = request.body_bytes()
    assert body is not None
    assert json.loads(body) == request.json
    assert "Zoë".encode() in body
    assert b", " not in body
