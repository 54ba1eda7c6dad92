"""What the poll reads from a Get Events page becomes exactly what a webhook delivery of the same event would be:
keyed by Klaviyo's event id, with values too long to store left out rather than stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evergreen.klaviyo import history as kh

AT = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def page(event_id: str | None, email: str) -> dict[str, object]:
    event: dict[str, object] = {
        "type": "event",
        "attributes": {"datetime": "2026-12-06T10:00:00+00:00"},
        "relationships": {"profile": {"data": {"type": "profile", "id": "01PROFILE"}}},
    }
    if event_id is not None:
        event["id"] = event_id
    profile = {"type": "profile", "id": "01PROFILE", "attributes": {"email": email, "phone_number": "+15555550100"}}
    return {"data": [event], "included": [profile]}


def test_a_polled_event_is_keyed_by_its_klaviyo_event_id_like_a_delivery():
    (event,) = kh.historic_events(page("01EVENT", " Ada@Example.com "))

    engagement = kh.as_engagement(event, "email_open")

    assert engagement is not None
    assert engagement.external_id == engagement.event_id == "01EVENT"
    assert engagement.kind == "email_open" and engagement.occurred_at == AT
    assert engagement.email == "ada@example.com" and engagement.klaviyo_profile_id == "01PROFILE"


def test_an_event_without_an_id_cannot_be_counted_once_and_is_not_applied():
    (event,) = kh.historic_events(page(None, "ada@example.com"))

    assert kh.as_engagement(event, "email_open") is None


def test_an_email_too_long_to_store_is_left_out_and_the_event_routes_by_its_klaviyo_profile():
    (event,) = kh.historic_events(page("01EVENT", "a" * 300 + "@example.com"))

    engagement = kh.as_engagement(event, "email_click")

    assert engagement is not None and engagement.email is None and engagement.klaviyo_profile_id == "01PROFILE"


def test_the_polls_window_has_an_upper_bound_so_consecutive_windows_meet():
    request = kh.events_request("M1", AT, until=AT + timedelta(minutes=20))

    assert request.query["filter"] == (
        'equals(metric_id,"M1"),greater-or-equal(datetime,2026-12-06T10:00:00Z),'
        "less-than(datetime,2026-12-06T10:20:00Z)"
    )
    assert request.query["sort"] == "-datetime" and request.query["page[size]"] == "1000"
