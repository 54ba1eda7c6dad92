"""Fill profiles' last open, click, bounce, spam complaint and unsubscribe from Klaviyo's event history.

For each engagement metric the account has, its events since the window's start are read newest first, so
the first event per (person, kind) is the one that matters and later pages only repeat older instants,
which are skipped without a write. A page's kept events are applied `workers` at a time, each through the
same reducer and writer as a Klaviyo webhook, so history never moves an instant backwards and running it
twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from evergreen.clock import Clock
from evergreen.domain.events import EngagementKind, EngagementRecorded
from evergreen.domain.profile import Profile, normalise_email
from evergreen.domain.reducers import apply, merge_guest
from evergreen.klaviyo import history as kh
from evergreen.klaviyo.pusher import KlaviyoSender
from evergreen.segments import Definitions
from evergreen.service.backfill_sync import BulkSyncReport, MembershipSync, QueueNothing, Touched
from evergreen.service.engagement_reader import EngagementReader, newest_per_person
from evergreen.service.ports import ProfileStore
from evergreen.service.profile_writer import Outcome, ProfileWriter, WriteResult
from evergreen.service.routing import CUSTOMER_PREFIX, GUEST_PREFIX, profile_for


@dataclass
class HistoryReport:
    metrics: int = 0
    pages: int = 0
    events: int = 0
    applied: int = 0
    unchanged: int = 0
    skipped: int = 0
    requests: int = 0
    sync: BulkSyncReport | None = None
    kinds: dict[str, int] = field(default_factory=dict)
    resume_at: tuple[str, str | None] | None = None
    """(metric id, page cursor) to continue from when the run was asked to stop early; None when done."""


def _profile_from_external_id(shop: str, external_id: str | None) -> Profile | None:
    """Evergreen's own external id (`<shop>/<profile key>`), as sync sets it on Klaviyo profiles."""
    if not external_id or not external_id.startswith(f"{shop}/"):
        return None
    key = external_id.removeprefix(f"{shop}/")
    if key.startswith(CUSTOMER_PREFIX):
        return Profile(shop=shop, customer_id=key.removeprefix(CUSTOMER_PREFIX))
    if key.startswith(GUEST_PREFIX):
        return Profile(shop=shop, email_normalized=key.removeprefix(GUEST_PREFIX))
    return None


class EngagementHistory:
    def __init__(
        self,
        sender: KlaviyoSender,
        store: ProfileStore,
        definitions: Definitions,
        clock: Clock,
        *,
        membership: MembershipSync | None = None,
        window_days: int = kh.DEFAULT_WINDOW_DAYS,
        on_page: Callable[[HistoryReport], None] | None = None,
        page_size: int = kh.EVENTS_PAGE_SIZE,
        workers: int = 8,
    ) -> None:
        if window_days < 1:
            raise ValueError("window_days must be at least 1")
        self._sender = sender
        self._store = store
        self._clock = clock
        self._writer = ProfileWriter(store, QueueNothing(), definitions, clock)
        self._membership = membership
        self._window = timedelta(days=window_days)
        self._on_page = on_page
        self._page_size = page_size
        self._workers = max(1, workers)

    def run(
        self,
        shop: str,
        *,
        start: tuple[str, str | None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> HistoryReport:
        """Read every engagement metric's history, from `start` (metric id, cursor) when resuming.

        When `should_stop()` turns true between pages, the run ends with `resume_at` set."""
        report = HistoryReport()
        reader = EngagementReader(self._sender, self._page_size)
        since = self._clock.now() - self._window
        touched: dict[str, Touched] = {}
        metrics = sorted(reader.metrics().items())
        if start is not None:
            metrics = [(metric_id, kind) for metric_id, kind in metrics if metric_id >= start[0]]
        with ThreadPoolExecutor(self._workers, thread_name_prefix="history") as pool:
            for metric_id, kind in metrics:
                report.metrics += 1
                seen: set[str] = set()
                cursor = start[1] if start is not None and metric_id == start[0] else None
                if should_stop is not None and should_stop():
                    report.resume_at = (metric_id, cursor)
                    break
                for page in reader.pages(metric_id, since, cursor=cursor):
                    report.pages += 1
                    report.events += len(page.events)
                    fresh, nameless = newest_per_person(page.events, seen)
                    report.skipped += nameless
                    for result in pool.map(lambda historic, k=kind: self._apply(shop, k, historic), fresh):
                        self._tally(kind, result, touched, report)
                    report.requests = reader.requests
                    if self._on_page is not None:
                        self._on_page(report)
                    if page.next_cursor is not None and should_stop is not None and should_stop():
                        report.resume_at = (metric_id, page.next_cursor)
                        break
                if report.resume_at is not None:
                    break
        report.requests = reader.requests
        if self._membership is not None and touched:
            report.sync = self._membership.push(list(touched.values()), self._clock.now())
        return report

    def _apply(self, shop: str, kind: EngagementKind, historic: kh.HistoricEvent) -> WriteResult | None:
        email = normalise_email(historic.email)
        blank = _profile_from_external_id(shop, historic.external_id) or profile_for(self._store, shop, None, email)
        if blank is None:
            return None
        event = EngagementRecorded(
            kind=kind,
            occurred_at=historic.occurred_at,
            email=historic.email,
            phone=historic.phone,
            klaviyo_profile_id=historic.klaviyo_profile_id,
        )
        return self._writer.write(blank, lambda profile: apply(profile, event), None, merge_guest)

    @staticmethod
    def _tally(
        kind: EngagementKind, result: WriteResult | None, touched: dict[str, Touched], report: HistoryReport
    ) -> None:
        if result is None:
            report.skipped += 1
            return
        report.kinds[kind] = report.kinds.get(kind, 0) + 1
        if result.outcome is not Outcome.WRITTEN or result.profile is None:
            report.unchanged += 1
            return
        report.applied += 1
        known = touched.get(result.profile.key)
        before = known.before if known is not None else None
        if before is None:
            before = frozenset(result.before.membership) if result.before is not None else frozenset()
        profile = (
            known.profile if known is not None and known.profile.version > result.profile.version else result.profile
        )
        touched[result.profile.key] = Touched(before, profile)
