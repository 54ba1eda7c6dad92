"""Klaviyo's engagement events, read through the Events API: the one reader the backfill and the poll share.

`GET /api/metrics` finds the account's engagement metrics (by Klaviyo's names, `klaviyo.webhooks.METRIC_KINDS`);
`GET /api/events` reads one metric's events in a datetime window, newest first, paged by cursor
(`klaviyo/history.py` builds the requests and parses the answers). The client honours the endpoints' published
rate limits (`HISTORY_RATE_LIMITS`). Every engagement fact is a newest instant or a flag, so only each person's
newest event per metric matters: `newest_per_person` keeps it and drops the older ones a page repeats.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from evergreen.domain.events import EngagementKind
from evergreen.domain.profile import normalise_email
from evergreen.klaviyo import history as kh
from evergreen.klaviyo.pusher import KlaviyoSender
from evergreen.klaviyo.requests import KlaviyoRequest


@dataclass(frozen=True)
class EventsPage:
    events: list[kh.HistoricEvent]
    cursor: str | None
    """The cursor of this page (None for the first), to resume a read at it."""
    next_cursor: str | None


class EngagementReader:
    """Reads one Klaviyo account's engagement metrics and their events, counting its requests."""

    def __init__(self, sender: KlaviyoSender, page_size: int = kh.EVENTS_PAGE_SIZE) -> None:
        self._sender = sender
        self._page_size = page_size
        self.requests = 0

    def _get(self, request: KlaviyoRequest) -> dict[str, Any]:
        self.requests += 1
        body = self._sender.send(request).json()
        return body if isinstance(body, dict) else {}

    def metrics(self) -> dict[str, EngagementKind]:
        """Metric id -> engagement kind, for every engagement metric the account has."""
        found: dict[str, EngagementKind] = {}
        cursor: str | None = None
        while True:
            body = self._get(kh.metrics_request(cursor))
            found.update(kh.engagement_metrics(body))
            cursor = kh.next_cursor(body)
            if cursor is None:
                return found

    def pages(
        self, metric_id: str, since: datetime, until: datetime | None = None, cursor: str | None = None
    ) -> Iterator[EventsPage]:
        """The metric's events in [since, until), newest first, a page at a time (from `cursor` when resuming)."""
        for _ in range(MAX_PAGES_PER_METRIC):
            body = self._get(kh.events_request(metric_id, since, cursor, self._page_size, until))
            following = kh.next_cursor(body)
            yield EventsPage(kh.historic_events(body), cursor, following)
            if following is None:
                return
            cursor = following


MAX_PAGES_PER_METRIC = 100_000


def identity_of(event: kh.HistoricEvent) -> str | None:
    """Who the event is about: the profile's external id, else its normalised email."""
    return event.external_id or normalise_email(event.email)


def newest_per_person(events: list[kh.HistoricEvent], seen: set[str]) -> tuple[list[kh.HistoricEvent], int]:
    """From a newest-first page, the first event of each person not in `seen` (which it extends), and how many
    events name nobody."""
    fresh: list[kh.HistoricEvent] = []
    nameless = 0
    for event in events:
        identity = identity_of(event)
        if identity is None:
            nameless += 1
        elif identity not in seen:
            seen.add(identity)
            fresh.append(event)
    return fresh, nameless
