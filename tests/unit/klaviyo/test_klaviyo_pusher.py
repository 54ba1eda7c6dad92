"""The pusher: which Klaviyo calls a batch of segment changes becomes, and which changes come back for retry."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from evergreen.domain.changes import ErasedProfile, ProfileErasure, SegmentChange
from evergreen.domain.list_moves import MemberListChange
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.pusher import KlaviyoPusher
from tests.unit.klaviyo.klaviyo_fakes import FakeKlaviyo, FakeTime, Sent

Factory = Callable[..., SegmentChange]
LISTS = {"vip": "LIST_VIP", "lapsed": "LIST_LAPSED"}


def _ids(sent: Sent) -> list[str]:
    return [item["id"] for item in sent.json["data"]]


def _profile_external_id(sent: Sent) -> str:
    return str(sent.json["data"]["attributes"]["external_id"])


def test_a_trickle_upserts_each_profile_then_sends_events_then_updates_lists(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    changes = [change_factory(n) for n in (1, 2, 3)]
    result = KlaviyoPusher(client, LISTS).push(changes)

    assert result.mode == "trickle"
    assert result.failed == set()
    assert [(s.method, s.path) for s in klaviyo.sent] == [
        *[("POST", "/api/profile-import")] * 3,
        *[("POST", "/api/events")] * 6,
        ("POST", "/api/lists/LIST_VIP/relationships/profiles"),
        ("DELETE", "/api/lists/LIST_LAPSED/relationships/profiles"),
    ]
    assert result.klaviyo_profile_ids == {0: "K000001", 1: "K000002", 2: "K000003"}
    assert _ids(klaviyo.calls("POST", "/api/lists/")[0]) == ["K000001", "K000002", "K000003"]
    assert _ids(klaviyo.calls("DELETE", "/api/lists/")[0]) == ["K000001", "K000002", "K000003"]
    assert (result.profiles_upserted, result.events_sent, result.list_additions, result.list_removals) == (3, 6, 3, 3)
    metrics = [
        s.json["data"]["attributes"]["metric"]["data"]["attributes"]["name"]
        for s in klaviyo.calls("POST", "/api/events")
    ]
    assert metrics.count("Evergreen Entered Segment") == 3
    assert metrics.count("Evergreen Exited Segment") == 3


def test_segments_without_a_list_mapping_touch_no_list(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    result = KlaviyoPusher(client, {}).push([change_factory(1)])
    assert result.failed == set()
    assert klaviyo.calls("POST", "/api/lists/") == []
    assert klaviyo.calls("DELETE", "/api/lists/") == []


def test_a_push_never_sends_consent_or_subscriptions(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    KlaviyoPusher(client, LISTS).push([change_factory(n) for n in range(3)])
    KlaviyoPusher(client, LISTS, bulk_threshold=2).push(
        [change_factory(n, klaviyo_profile_id=f"K{n}") for n in range(3)]
    )
    for sent in klaviyo.sent:
        text = json.dumps(sent.json).lower()
        assert "consent" not in text
        assert "subscri" not in text


def test_a_rejected_profile_fails_only_its_own_change_and_is_not_retried(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    changes = [change_factory(n) for n in (1, 2, 3)]
    bad = changes[1].external_id
    klaviyo.fail(400, lambda s: s.path == "/api/profile-import" and _profile_external_id(s) == bad)

    result = KlaviyoPusher(client, LISTS).push(changes)

    assert result.failed == {1}
    assert result.errors[1] == "create_or_update_profile: 400"
    assert len(klaviyo.calls("POST", "/api/profile-import")) == 3
    assert fake_time.sleeps == []
    assert result.events_sent == 4  # two per surviving change; none for the rejected one
    assert _ids(klaviyo.calls("POST", "/api/lists/")[0]) == ["K000001", "K000002"]


def test_a_429_is_waited_out_and_nothing_fails(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.fail(429, lambda s: s.path == "/api/events", times=1, retry_after="3")
    result = KlaviyoPusher(client, LISTS).push([change_factory(1)])
    assert result.failed == set()
    assert fake_time.sleeps == [3.0]
    assert client.throttled_count == 1
    assert result.events_sent == 2


def test_a_5xx_is_retried_and_nothing_fails(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.fail(502, lambda s: s.path == "/api/profile-import", times=2)
    result = KlaviyoPusher(client, LISTS).push([change_factory(1)])
    assert result.failed == set()
    assert len(klaviyo.calls("POST", "/api/profile-import")) == 3


def test_an_endpoint_that_keeps_throttling_is_given_up_for_the_rest_of_the_push(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, fake_time: FakeTime, change_factory: Factory
) -> None:
    klaviyo.fail(429, lambda s: s.path == "/api/events", retry_after="1")
    result = KlaviyoPusher(client, LISTS, bulk_threshold=11).push([change_factory(n) for n in range(10)])
    assert result.failed == set(range(10))
    assert len(klaviyo.calls("POST", "/api/events")) == 5  # one call's bounded attempts, not 20 calls' worth
    assert result.gave_up == {"create_event"}
    assert result.errors[9] == "create_event: 429"
    assert len(klaviyo.calls("POST", "/api/profile-import")) == 10  # other endpoints carry on


def test_a_failed_list_call_fails_exactly_the_profiles_it_carried(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    changes = [change_factory(1), change_factory(2, exited=[]), change_factory(3, entered=[])]
    klaviyo.fail(500, lambda s: s.method == "DELETE")
    result = KlaviyoPusher(client, LISTS).push(changes)
    # Changes 0 and 2 exited "lapsed", whose list removal keeps failing; change 1 only entered "vip".
    assert result.failed == {0, 2}
    assert result.errors[0] == "remove_profiles_from_list: 500"


def test_a_profile_without_a_klaviyo_id_cannot_change_lists_and_is_retried(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    klaviyo.fail(200, lambda s: s.path == "/api/profile-import", errors=[])  # a 200 without data.id
    result = KlaviyoPusher(client, LISTS).push([change_factory(1)])
    assert result.failed == {0}
    assert "no Klaviyo profile id" in result.errors[0]


def test_several_versions_of_one_profile_are_upserted_once_from_the_newest(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    older = change_factory(1, version=4, segments=["vip"], entered=["vip"], exited=[])
    newer = change_factory(1, version=5, segments=[], entered=[], exited=["vip"])
    result = KlaviyoPusher(client, LISTS).push([newer, older])

    imports = klaviyo.calls("POST", "/api/profile-import")
    assert len(imports) == 1
    assert imports[0].json["data"]["attributes"]["properties"]["evergreen_synced_version"] == 5
    assert len(klaviyo.calls("POST", "/api/events")) == 2  # every version's events still count
    assert klaviyo.calls("POST", "/api/lists/") == []
    assert _ids(klaviyo.calls("DELETE", "/api/lists/")[0]) == ["K000001"]  # the final state wins
    assert result.klaviyo_profile_ids == {0: "K000001", 1: "K000001"}


def test_reconciling_lists_sets_every_mapped_list_from_the_snapshot(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    change = change_factory(1, segments=["vip"], entered=[], exited=[])
    KlaviyoPusher(client, LISTS, reconcile_lists=True).push([change])
    assert [s.path for s in klaviyo.calls("POST", "/api/lists/")] == ["/api/lists/LIST_VIP/relationships/profiles"]
    assert [s.path for s in klaviyo.calls("DELETE", "/api/lists/")] == ["/api/lists/LIST_LAPSED/relationships/profiles"]


def test_an_empty_batch_makes_no_call(client: KlaviyoClient, klaviyo: FakeKlaviyo) -> None:
    result = KlaviyoPusher(client, LISTS).push([])
    assert result.failed == set()
    assert klaviyo.sent == []


# --- floods ------------------------------------------------------------------------------------------


def test_a_flood_uses_bulk_jobs_and_list_calls_of_at_most_1000_ids(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    changes = [change_factory(n, klaviyo_profile_id=f"KP{n}") for n in range(2_500)]  # entered vip, exited lapsed
    result = KlaviyoPusher(client, LISTS).push(changes)

    assert result.mode == "flood"
    assert result.failed == set()
    jobs = klaviyo.calls("POST", "/api/profile-bulk-import-jobs")
    assert len(jobs) == 1
    assert len(jobs[0].json["data"]["attributes"]["profiles"]["data"]) == 2_500
    assert jobs[0].json["data"]["relationships"]["lists"]["data"] == [{"type": "list", "id": "LIST_VIP"}]

    event_jobs = klaviyo.calls("POST", "/api/event-bulk-create-jobs")
    sizes = [
        sum(
            len(entry["attributes"]["events"]["data"])
            for entry in job.json["data"]["attributes"]["events-bulk-create"]["data"]
        )
        for job in event_jobs
    ]
    assert sizes == [1_000] * 5

    assert klaviyo.calls("POST", "/api/lists/") == []  # the import job added them to LIST_VIP
    removals = klaviyo.calls("DELETE", "/api/lists/")
    assert [len(_ids(call)) for call in removals] == [1_000, 1_000, 500]
    assert klaviyo.calls("POST", "/api/profile-import") == []
    assert klaviyo.calls("POST", "/api/events") == []
    assert (result.profiles_upserted, result.events_sent, result.list_removals) == (2_500, 5_000, 2_500)


def test_a_bulk_event_job_never_splits_one_changes_events(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    changes = [change_factory(n, entered=["vip", "repeat"], exited=["lapsed"]) for n in range(400)]
    KlaviyoPusher(client, {}).push(changes)
    jobs = klaviyo.calls("POST", "/api/event-bulk-create-jobs")
    per_job = [job.json["data"]["attributes"]["events-bulk-create"]["data"] for job in jobs]
    assert [sum(len(entry["attributes"]["events"]["data"]) for entry in job) for job in per_job] == [999, 201]
    assert all(len(entry["attributes"]["events"]["data"]) == 3 for job in per_job for entry in job)


def test_a_flood_splits_bulk_profile_jobs_at_10000_profiles(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    changes = [change_factory(n, entered=[], exited=[]) for n in range(10_050)]
    result = KlaviyoPusher(client, {}).push(changes)
    jobs = klaviyo.calls("POST", "/api/profile-bulk-import-jobs")
    assert [len(job.json["data"]["attributes"]["profiles"]["data"]) for job in jobs] == [10_000, 50]
    assert result.bulk_profile_jobs == 2
    assert klaviyo.calls("POST", "/api/event-bulk-create-jobs") == []


def test_a_flood_groups_profiles_by_the_lists_they_join(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    lists = {"vip": "LIST_VIP", "repeat": "LIST_REPEAT"}
    changes = [
        *[change_factory(n, entered=["vip"], exited=[]) for n in range(30)],
        *[change_factory(100 + n, entered=["vip", "repeat"], exited=[]) for n in range(20)],
        *[change_factory(200 + n, entered=["new"], exited=[]) for n in range(10)],
    ]
    KlaviyoPusher(client, lists).push(changes)
    jobs = {
        tuple(item["id"] for item in job.json["data"].get("relationships", {}).get("lists", {}).get("data", [])): len(
            job.json["data"]["attributes"]["profiles"]["data"]
        )
        for job in klaviyo.calls("POST", "/api/profile-bulk-import-jobs")
    }
    assert jobs == {(): 10, ("LIST_VIP",): 30, ("LIST_REPEAT", "LIST_VIP"): 20}


def test_a_failed_bulk_event_job_fails_only_the_changes_it_carried(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    changes = [change_factory(n, entered=["vip"], exited=[]) for n in range(1_500)]
    calls = {"n": 0}

    def second_job(sent: Sent) -> bool:
        if sent.path != "/api/event-bulk-create-jobs":
            return False
        calls["n"] += 1
        return calls["n"] == 2

    klaviyo.fail(400, second_job)
    result = KlaviyoPusher(client, {}).push(changes)
    assert result.failed == set(range(1_000, 1_500))
    assert result.errors[1_200] == "bulk_create_events: 400"
    assert result.events_sent == 1_000


def test_a_failed_bulk_profile_job_fails_its_changes_and_skips_their_events(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    changes = [
        *[change_factory(n, entered=["vip"], exited=[]) for n in range(40)],
        *[change_factory(100 + n, entered=["new"], exited=[]) for n in range(20)],
    ]
    klaviyo.fail(503, lambda s: s.path == "/api/profile-bulk-import-jobs" and "relationships" in s.json["data"])
    result = KlaviyoPusher(client, {"vip": "LIST_VIP"}).push(changes)
    assert result.failed == set(range(40))
    assert result.events_sent == 20
    assert len(klaviyo.calls("POST", "/api/profile-bulk-import-jobs")) == 1 + 5  # 5 attempts for the failing job


def test_a_flood_resolves_missing_klaviyo_ids_before_removing_from_lists(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    changes = [change_factory(n, entered=[], exited=["lapsed"]) for n in range(60)]
    for n in range(50):
        klaviyo.known_ids[changes[n].external_id] = f"KNOWN{n}"

    result = KlaviyoPusher(client, LISTS).push(changes)

    assert result.failed == set()
    lookups = klaviyo.calls("GET", "/api/profiles")
    assert len(lookups) == 2  # 60 external ids, 50 per lookup
    singles = klaviyo.calls("POST", "/api/profile-import")
    assert len(singles) == 10  # the unknown ones get an id from a single upsert
    jobs = klaviyo.calls("POST", "/api/profile-bulk-import-jobs")
    assert len(jobs[0].json["data"]["attributes"]["profiles"]["data"]) == 50
    removed = [i for call in klaviyo.calls("DELETE", "/api/lists/LIST_LAPSED") for i in _ids(call)]
    assert sorted(removed) == sorted([f"KNOWN{n}" for n in range(50)] + [f"K{n:06d}" for n in range(51, 61)])
    assert result.klaviyo_profile_ids[0] == "KNOWN0"
    assert result.klaviyo_profile_ids[59] == "K000060"


def test_a_flood_with_failing_lookups_falls_back_to_single_upserts(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    changes = [change_factory(n, entered=[], exited=["lapsed"]) for n in range(50)]
    klaviyo.fail(403, lambda s: s.path == "/api/profiles")
    result = KlaviyoPusher(client, LISTS).push(changes)
    assert result.failed == set()
    assert len(klaviyo.calls("POST", "/api/profile-import")) == 50
    assert klaviyo.calls("POST", "/api/profile-bulk-import-jobs") == []


@pytest.mark.parametrize("threshold", [0, -1])
def test_a_bulk_threshold_below_one_is_refused(client: KlaviyoClient, threshold: int) -> None:
    with pytest.raises(ValueError):
        KlaviyoPusher(client, {}, bulk_threshold=threshold)


def test_a_409_duplicate_profile_is_resolved_by_updating_the_profile_klaviyo_names(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    conflict = [{"status": 409, "code": "duplicate_profile", "meta": {"duplicate_profile_id": "01EXISTING"}}]
    klaviyo.fail(
        409, lambda sent: sent.path == "/api/profile-import" and "id" not in sent.json["data"], times=1, errors=conflict
    )

    result = KlaviyoPusher(client, {}).push([change_factory(1)])

    imports = klaviyo.calls("POST", "/api/profile-import")
    assert result.failed == set()
    assert [sent.json["data"].get("id") for sent in imports] == [None, "01EXISTING"]


def test_a_known_klaviyo_id_is_sent_so_the_same_profile_is_updated(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    KlaviyoPusher(client, {}).push([change_factory(1, klaviyo_profile_id="01KNOWN")])

    [sent] = klaviyo.calls("POST", "/api/profile-import")
    assert sent.json["data"]["id"] == "01KNOWN"


# --- whether a retry can help, and erasures -----------------------------------------------------------------


def test_a_change_klaviyo_refuses_is_poison_and_a_throttled_one_carries_retry_after(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    first, second = change_factory(1), change_factory(2)
    klaviyo.fail(400, lambda s: s.path == "/api/profile-import" and _profile_external_id(s) == first.external_id)
    klaviyo.fail(429, lambda s: s.path == "/api/events", retry_after="120")

    result = KlaviyoPusher(client, LISTS).push([first, second])

    assert result.failed == {0, 1}
    assert result.poison == {0}
    assert result.retry_after_s == {1: 120.0}


def test_a_change_failed_fast_after_an_endpoint_was_given_up_keeps_klaviyos_retry_after(
    client: KlaviyoClient, klaviyo: FakeKlaviyo, change_factory: Factory
) -> None:
    klaviyo.fail(429, lambda s: s.path == "/api/events", retry_after="90")

    result = KlaviyoPusher(client, LISTS).push([change_factory(n) for n in range(3)])

    assert result.retry_after_s == {0: 90.0, 1: 90.0, 2: 90.0}
    assert result.poison == set()


def _erasure(*profiles: tuple[str, str | None]) -> ProfileErasure:
    return ProfileErasure(
        shop="evergreen-demo.myshopify.com",
        profiles=[ErasedProfile(external_id=e, klaviyo_profile_id=k) for e, k in profiles],
        segments=["vip", "lapsed", "repeat"],
        requested_at=datetime(2026, 7, 1, tzinfo=UTC),
    )


def test_an_erasure_unsets_evergreens_properties_and_leaves_the_mapped_lists_without_events(
    client: KlaviyoClient, klaviyo: FakeKlaviyo
) -> None:
    result = KlaviyoPusher(client, LISTS).erase(_erasure(("shop/customer#1", "K1")))

    assert result.failed is False and result.profiles_cleared == 1
    [unset, *removals] = klaviyo.sent
    assert unset.json["data"]["id"] == "K1"
    unset_names = unset.json["data"]["meta"]["patch_properties"]["unset"]
    assert unset_names[:2] == ["evergreen_segments", "evergreen_synced_version"]
    assert {"evergreen_net_spent", "evergreen_rfm_score", "evergreen_distance_km", "evergreen_city"} <= set(
        unset_names
    ), "every fact a klaviyo_properties list can push is removed too"
    assert "properties" not in unset.json["data"]["attributes"]
    assert sorted((s.method, s.path, tuple(_ids(s))) for s in removals) == [
        ("DELETE", "/api/lists/LIST_LAPSED/relationships/profiles", ("K1",)),
        ("DELETE", "/api/lists/LIST_VIP/relationships/profiles", ("K1",)),
    ]
    assert klaviyo.calls("POST", "/api/events") == []
    assert klaviyo.calls("POST", "/api/data-privacy-deletion-jobs") == []


def test_an_erasure_of_a_profile_klaviyo_never_had_sends_nothing_more_than_the_lookup(
    client: KlaviyoClient, klaviyo: FakeKlaviyo
) -> None:
    result = KlaviyoPusher(client, LISTS).erase(
        _erasure(("shop/guest#nobody@example.com", None)), delete_in_klaviyo=True
    )

    assert result.failed is False and result.profiles_cleared == 0
    assert [(s.method, s.path) for s in klaviyo.sent] == [("GET", "/api/profiles")]


def test_an_erasure_klaviyo_refuses_is_poison(client: KlaviyoClient, klaviyo: FakeKlaviyo) -> None:
    klaviyo.fail(403, errors=[{"status": 403, "code": "permission_denied", "title": "Missing scope"}])

    result = KlaviyoPusher(client, LISTS).erase(_erasure(("shop/customer#1", "K1")), delete_in_klaviyo=True)

    assert result.failed and result.poison
    assert result.error == "create_or_update_profile: 403"


def test_a_profile_already_deleted_in_klaviyo_needs_no_erasure(client: KlaviyoClient, klaviyo: FakeKlaviyo) -> None:
    klaviyo.fail(404, lambda s: s.path == "/api/profile-import")

    result = KlaviyoPusher(client, LISTS).erase(_erasure(("shop/customer#1", "K1")))

    assert result.failed is False and result.profiles_cleared == 0


# --- list moves --------------------------------------------------------------------------------------------


def _member(message: int, number: int, klaviyo_id: str | None = None, join: str | None = "NEW") -> MemberListChange:
    return MemberListChange(message, f"shop/customer#{number}", klaviyo_id, join, ("OLD",))


def test_a_list_move_fills_by_external_id_in_one_job_and_empties_by_klaviyo_id_looking_up_the_unknown(
    client: KlaviyoClient, klaviyo: FakeKlaviyo
) -> None:
    klaviyo.known_ids["shop/customer#2"] = "K2"
    members = [_member(0, 1, "K1"), _member(0, 2), _member(1, 3)]  # customer 3: not in Klaviyo, nothing to leave

    result = KlaviyoPusher(client, LISTS).move_lists(members)

    assert result.failed == set()
    [job] = klaviyo.calls("POST", "/api/profile-bulk-import-jobs")
    assert [p["attributes"] for p in job.json["data"]["attributes"]["profiles"]["data"]] == [
        {"external_id": "shop/customer#1"},
        {"external_id": "shop/customer#2"},
        {"external_id": "shop/customer#3"},
    ]
    assert job.json["data"]["relationships"]["lists"]["data"] == [{"type": "list", "id": "NEW"}]
    [removal] = klaviyo.calls("DELETE", "/api/lists/")
    assert removal.path == "/api/lists/OLD/relationships/profiles" and _ids(removal) == ["K1", "K2"]
    assert len(klaviyo.calls("GET", "/api/profiles")) == 1


def test_a_list_move_fill_klaviyo_refuses_is_poison_for_the_messages_it_carried(
    client: KlaviyoClient, klaviyo: FakeKlaviyo
) -> None:
    klaviyo.fail(400, lambda s: s.path == "/api/profile-bulk-import-jobs")

    result = KlaviyoPusher(client, LISTS).move_lists([_member(0, 1, "K1"), _member(3, 2, "K2", join=None)])

    assert result.failed == {0} and result.poison == {0}
    assert result.errors[0] == "bulk_import_profiles: 400"


def test_an_old_list_that_no_longer_exists_in_klaviyo_is_already_empty(
    client: KlaviyoClient, klaviyo: FakeKlaviyo
) -> None:
    klaviyo.fail(404, lambda s: s.method == "DELETE")

    result = KlaviyoPusher(client, LISTS).move_lists([_member(0, 1, "K1", join=None)])

    assert result.failed == set() and result.list_removals == 0
