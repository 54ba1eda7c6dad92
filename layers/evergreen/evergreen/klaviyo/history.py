"""Klaviyo engagement history: GET /api/metrics to find the engagement metrics, then GET /api/events per
metric, filtered by datetime, newest first, paged by cursor (pure request building and answer parsing).

Rate limits (x-klaviyo-ratelimit in the spec): get_events 350/s burst, 3,500/min steady; get_metrics 10/s,
150/min. `HISTORY_RATE_LIMITS` adds them to the sync's limits for a `KlaviyoClient` used for history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from evergreen.clock import parse_instant
from evergreen.domain.events import EngagementKind
from evergreen.domain.profile import normalise_email
from evergreen.klaviyo.requests import RATE_LIMITS, KlaviyoRequest, RateLimit
from evergreen.klaviyo.webhooks import MAX_EMAIL_CHARS, MAX_ID_CHARS, MAX_PHONE_CHARS, METRIC_KINDS, KlaviyoEngagement

OP_GET_EVENTS = "get_events"
OP_GET_METRICS = "get_metrics"
EVENTS_PAGE_SIZE = 1_000
"""The most the endpoint returns per page."""
DEFAULT_WINDOW_DAYS = 365
"""How far back engagement history is read by default (at least the 180 days `lapsed`/`unengaged` look at)."""

HISTORY_RATE_LIMITS: Mapping[str, RateLimit] = {
    **RATE_LIMITS,
    OP_GET_EVENTS: RateLimit(350, 3500),
    OP_GET_METRICS: RateLimit(10, 150),
}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def metrics_request(cursor: str | None = None) -> KlaviyoRequest:
    query = {"fields[metric]": "name"}
    if cursor:
        query["page[cursor]"] = cursor
    return KlaviyoRequest(method="GET", path="/api/metrics", query=query, operation=OP_GET_METRICS)


def events_request(
    metric_id: str,
    since: datetime,
    cursor: str | None = None,
    page_size: int = EVENTS_PAGE_SIZE,
    until: datetime | None = None,
) -> KlaviyoRequest:
    """One page of a metric's events at or after `since` (and before `until`, when given), newest first, each
    with its id and its profile's identity."""
    if '"' in metric_id or "\\" in metric_id:
        raise ValueError("metric ids with quotes or backslashes cannot be used in a filter")
    window = f"greater-or-equal(datetime,{_iso(since)})"
    if until is not None:
        window += f",less-than(datetime,{_iso(until)})"
    query = {
        "filter": f'equals(metric_id,"{metric_id}"),{window}',
        "include": "profile",
        "fields[event]": "datetime",
        "fields[profile]": "email,phone_number,external_id",
        "sort": "-datetime",
        "page[size]": str(min(max(page_size, 1), EVENTS_PAGE_SIZE)),
    }
    if cursor:
        query["page[cursor]"] = cursor
    return KlaviyoRequest(method="GET", path="/api/events", query=query, operation=OP_GET_EVENTS)


def next_cursor(body: Mapping[str, Any]) -> str | None:
    """The `page[cursor]` of the answer's `links.next`, or None on the last page."""
    links = body.get("links")
    following = links.get("next") if isinstance(links, dict) else None
    if not isinstance(following, str) or not following:
        return None
    values = parse_qs(urlsplit(following).query).get("page[cursor]")
    return values[0] if values else None


def engagement_metrics(body: Mapping[str, Any]) -> dict[str, EngagementKind]:
    """Metric id -> engagement kind, for the metrics on this page Evergreen understands."""
    found: dict[str, EngagementKind] = {}
    for metric in body.get("data") or []:
        if not isinstance(metric, dict):
            continue
        name = (metric.get("attributes") or {}).get("name")
        kind = METRIC_KINDS.get(name.lower()) if isinstance(name, str) else None
        if kind is not None and isinstance(metric.get("id"), str):
            found[metric["id"]] = kind
    return found


@dataclass(frozen=True)
class HistoricEvent:
    occurred_at: datetime
    klaviyo_profile_id: str | None
    email: str | None
    phone: str | None
    external_id: str | None
    event_id: str | None = None
    """Klaviyo's event id: the same id a system webhook delivers as `data[].external_id`."""


def historic_events(body: Mapping[str, Any]) -> list[HistoricEvent]:
    """The page's events joined with their included profiles; events without a datetime are dropped."""
    profiles = {
        item.get("id"): item.get("attributes") or {}
        for item in body.get("included") or []
        if isinstance(item, dict) and item.get("type") == "profile"
    }
    events: list[HistoricEvent] = []
    for event in body.get("data") or []:
        if not isinstance(event, dict):
            continue
        occurred_at = parse_instant((event.get("attributes") or {}).get("datetime"))
        if occurred_at is None:
            continue
        profile_ref = ((event.get("relationships") or {}).get("profile") or {}).get("data") or {}
        profile_id = profile_ref.get("id") if isinstance(profile_ref, dict) else None
        attributes = profiles.get(profile_id, {})
        events.append(
            HistoricEvent(
                occurred_at=occurred_at,
                klaviyo_profile_id=profile_id if isinstance(profile_id, str) else None,
                email=attributes.get("email") if isinstance(attributes.get("email"), str) else None,
                phone=attributes.get("phone_number") if isinstance(attributes.get("phone_number"), str) else None,
                external_id=attributes.get("external_id") if isinstance(attributes.get("external_id"), str) else None,
                event_id=event.get("id") if isinstance(event.get("id"), str) else None,
            )
        )
    return events


POLLED_TOPIC = "events-api"
"""The `topic` a polled engagement carries (logs only: its kind comes from the metric)."""


def _fitting(value: str | None, limit: int) -> str | None:
    return value if value is not None and len(value.encode("utf-8", "replace")) <= limit else None


def as_engagement(event: HistoricEvent, kind: EngagementKind) -> KlaviyoEngagement | None:
    """The event as a system webhook would have delivered it, keyed by its Klaviyo event id (None without one)."""
    event_id = _fitting(event.event_id, MAX_ID_CHARS)
    if event_id is None:
        return None
    return KlaviyoEngagement(
        external_id=event_id,
        topic=POLLED_TOPIC,
        kind=kind,
        occurred_at=event.occurred_at,
        email=_fitting(normalise_email(event.email), MAX_EMAIL_CHARS),
        phone=_fitting(event.phone, MAX_PHONE_CHARS),
        klaviyo_profile_id=_fitting(event.klaviyo_profile_id, MAX_ID_CHARS),
        event_id=event_id,
    )
