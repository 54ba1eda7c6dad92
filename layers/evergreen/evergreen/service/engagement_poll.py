"""The engagement poll: every Klaviyo account's new engagement events, applied as webhook deliveries are.

Klaviyo's system webhooks exist only for Klaviyo CDP customers and app partners, so for most accounts the poll
is what keeps last open, click, bounce, spam complaint and unsubscribe current. Each run, for each shop named
in the Klaviyo secret, it reads every engagement metric's events in the window
[covered_until - overlap, now) through the shared `EngagementReader` (newest first, paged by cursor, within
the Events API's rate limits) and applies each person's newest event per metric through
`KlaviyoWebhooks.apply_engagements`, keyed by Klaviyo's event id like a delivery: an event that arrives by
webhook and by poll, or in two overlapping windows, is applied once.

The overlap (15 minutes by default) re-reads the end of the previous window, so an event Klaviyo indexes up to
that late, or stamps with a clock that far behind ours, is still read. A window is at most `max_window` long,
so a poll that was off for a day catches up over several runs instead of one that cannot finish.

One account failing (401, 403, 429 after the client's retries, 5xx) is recorded on its checkpoint and in the
report, and the others go on; its checkpoint does not move, so the next run reads that window again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from evergreen.clock import Clock
from evergreen.klaviyo import history as kh
from evergreen.klaviyo.errors import KlaviyoError
from evergreen.klaviyo.pusher import KlaviyoSender
from evergreen.klaviyo.webhooks import KlaviyoEngagement
from evergreen.service.engagement_reader import EngagementReader, newest_per_person
from evergreen.service.ports import WILDCARD, KlaviyoAccount
from evergreen.service.shopify_webhooks import WebhookAnswer

logger = Logger(child=True)

DEFAULT_OVERLAP = timedelta(minutes=15)
"""How much of the previous window each poll reads again (late-indexed events, clock skew)."""
DEFAULT_MAX_WINDOW = timedelta(hours=1)
"""The longest window one poll reads for an account; a longer gap is caught up over several runs."""
APPLY_CHUNK = 50
"""Engagements applied together (one `apply_engagements` call); chunks of a page run `workers` at a time."""


@dataclass(frozen=True)
class PollCheckpoint:
    """Where an account's poll stands (one item per shop in the profiles table)."""

    covered_until: datetime
    """Every event before this instant has been read and applied."""
    completed_at: datetime | None = None
    """When the last poll that completed for this account finished."""
    newest_event_at: datetime | None = None
    """The newest engagement event the poll has read for this account."""
    failed_at: datetime | None = None
    failure: str | None = None
    """Why the last poll failed (e.g. `klaviyo 403 get_events`), None after a poll that completed."""


class PollCheckpoints(Protocol):
    def load(self, shop: str) -> PollCheckpoint | None: ...
    def save(self, shop: str, checkpoint: PollCheckpoint) -> None: ...


class EngagementApplier(Protocol):
    def apply_engagements(self, shop: str, engagements: Sequence[KlaviyoEngagement]) -> WebhookAnswer: ...


@dataclass
class AccountPoll:
    """What one account's poll did."""

    shop: str
    since: datetime
    until: datetime
    metrics: int = 0
    pages: int = 0
    requests: int = 0
    events: int = 0
    """Events read, of every kind, repeats included."""
    outcomes: dict[str, int] = field(default_factory=dict)
    """Per outcome (written, duplicate, unchanged, parked, ...) of the engagements applied."""
    entered: list[str] = field(default_factory=list)
    exited: list[str] = field(default_factory=list)
    newest_event_at: datetime | None = None
    lag_seconds: float = 0.0
    """Now minus `covered_until` after this run: how far behind the account's engagement is."""
    failure: str | None = None
    completed: bool = False

    @property
    def applied(self) -> int:
        return self.outcomes.get("written", 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "shop": self.shop,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "completed": self.completed,
            "failure": self.failure,
            "metrics": self.metrics,
            "pages": self.pages,
            "requests": self.requests,
            "events": self.events,
            "outcomes": self.outcomes,
            "lag_seconds": round(self.lag_seconds, 3),
        }


@dataclass
class PollReport:
    accounts: list[AccountPoll] = field(default_factory=list)

    @property
    def failures(self) -> list[AccountPoll]:
        return [account for account in self.accounts if account.failure is not None]

    @property
    def max_lag_seconds(self) -> float:
        return max((account.lag_seconds for account in self.accounts), default=0.0)

    def total(self, name: str) -> int:
        return sum(int(getattr(account, name)) for account in self.accounts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accounts": [account.as_dict() for account in self.accounts],
            "failed": [account.shop for account in self.failures],
            "events": self.total("events"),
            "applied": self.total("applied"),
            "requests": self.total("requests"),
            "max_lag_seconds": round(self.max_lag_seconds, 3),
        }


class _Stopped(Exception):
    """The run's time is up: the account's window is left for the next run."""


class EngagementPoll:
    def __init__(
        self,
        accounts: Callable[[], dict[str, KlaviyoAccount]],
        sender_for: Callable[[str], KlaviyoSender | None],
        applier: EngagementApplier,
        checkpoints: PollCheckpoints,
        clock: Clock,
        *,
        overlap: timedelta = DEFAULT_OVERLAP,
        max_window: timedelta = DEFAULT_MAX_WINDOW,
        page_size: int = kh.EVENTS_PAGE_SIZE,
        workers: int = 4,
        wildcard_shops: Sequence[str] = (),
    ) -> None:
        if overlap < timedelta(0) or max_window <= timedelta(0):
            raise ValueError("overlap must not be negative and max_window must be positive")
        self._accounts = accounts
        self._sender_for = sender_for
        self._applier = applier
        self._checkpoints = checkpoints
        self._clock = clock
        self._overlap = overlap
        self._max_window = max_window
        self._page_size = page_size
        self._workers = max(1, workers)
        self._wildcard_shops = tuple(wildcard_shops)

    def shops(self) -> list[str]:
        """Every shop the poll covers: each one named in the Klaviyo secret with an API key, and the
        `wildcard_shops` (ENGAGEMENT_POLL_SHOPS) that use the `"*"` account (it names no shop of its own)."""
        accounts = self._accounts()
        named = {shop for shop, account in accounts.items() if shop != WILDCARD and account.api_key}
        wildcard = accounts.get(WILDCARD)
        if wildcard is not None and wildcard.api_key:
            named |= {shop for shop in self._wildcard_shops if shop not in accounts}
        return sorted(named)

    def run(self, should_stop: Callable[[], bool] | None = None) -> PollReport:
        report = PollReport()
        with ThreadPoolExecutor(self._workers, thread_name_prefix="engagement-poll") as pool:
            for shop in self.shops():
                if should_stop is not None and should_stop():
                    break
                report.accounts.append(self._poll(shop, pool, should_stop))
        return report

    def _window(self, checkpoint: PollCheckpoint | None, now: datetime) -> tuple[datetime, datetime]:
        if checkpoint is None:
            return now - self._overlap, now
        since = checkpoint.covered_until - self._overlap
        return since, min(now, checkpoint.covered_until + self._max_window)

    def _poll(self, shop: str, pool: ThreadPoolExecutor, should_stop: Callable[[], bool] | None) -> AccountPoll:
        now = self._clock.now().replace(microsecond=0)  # the filter has whole seconds: windows meet exactly
        checkpoint = self._checkpoints.load(shop)
        since, until = self._window(checkpoint, now)
        poll = AccountPoll(shop=shop, since=since, until=until)
        sender = self._sender_for(shop)
        try:
            if sender is None:
                raise KlaviyoError("no Klaviyo API key", operation="get_events")
            self._read(shop, EngagementReader(sender, self._page_size), poll, pool, should_stop)
        except _Stopped:
            covered = checkpoint.covered_until if checkpoint is not None else since
            poll.lag_seconds = (self._clock.now() - covered).total_seconds()
            return poll
        except KlaviyoError as error:
            poll.failure = f"klaviyo {error.status or 'unavailable'} {error.operation}"
            covered = checkpoint.covered_until if checkpoint is not None else since
            poll.lag_seconds = (self._clock.now() - covered).total_seconds()
            logger.warning(
                "Engagement poll failed for this account; the others go on",
                extra={"shop": shop, "status": error.status, "operation": error.operation},
            )
            self._checkpoints.save(
                shop,
                PollCheckpoint(
                    covered_until=covered,
                    completed_at=checkpoint.completed_at if checkpoint is not None else None,
                    newest_event_at=checkpoint.newest_event_at if checkpoint is not None else None,
                    failed_at=self._clock.now(),
                    failure=poll.failure,
                ),
            )
            return poll
        newest = _latest(checkpoint.newest_event_at if checkpoint is not None else None, poll.newest_event_at)
        completed_at = self._clock.now()
        self._checkpoints.save(
            shop, PollCheckpoint(covered_until=until, completed_at=completed_at, newest_event_at=newest)
        )
        poll.completed = True
        poll.lag_seconds = (completed_at - until).total_seconds()
        return poll

    def _read(
        self,
        shop: str,
        reader: EngagementReader,
        poll: AccountPoll,
        pool: ThreadPoolExecutor,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        try:
            for metric_id, kind in sorted(reader.metrics().items()):
                poll.metrics += 1
                seen: set[str] = set()
                for page in reader.pages(metric_id, poll.since, poll.until):
                    poll.pages += 1
                    poll.events += len(page.events)
                    for event in page.events:
                        poll.newest_event_at = _latest(poll.newest_event_at, event.occurred_at)
                    fresh, _ = newest_per_person(page.events, seen)
                    engagements = [e for e in (kh.as_engagement(event, kind) for event in fresh) if e is not None]
                    chunks = [engagements[i : i + APPLY_CHUNK] for i in range(0, len(engagements), APPLY_CHUNK)]
                    for answer in pool.map(lambda chunk: self._applier.apply_engagements(shop, chunk), chunks):
                        for outcome, count in answer.body.get("outcomes", {}).items():
                            poll.outcomes[outcome] = poll.outcomes.get(outcome, 0) + count
                        poll.entered += answer.entered
                        poll.exited += answer.exited
                    if should_stop is not None and should_stop():
                        raise _Stopped
        finally:
            poll.requests = reader.requests


def _latest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first or second
    return max(first, second)
