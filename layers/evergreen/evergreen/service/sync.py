"""Push segment changes to Klaviyo, newest version per profile, and record what reached it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aws_lambda_powertools import Logger

from evergreen.clock import Clock
from evergreen.domain.changes import SegmentChange

logger = Logger(child=True)

ProfileRef = tuple[str, str]


class PushOutcome(Protocol):
    @property
    def failed(self) -> set[int]: ...
    @property
    def klaviyo_profile_ids(self) -> dict[int, str]: ...


class Pusher(Protocol):
    def push(self, changes: Sequence[SegmentChange]) -> PushOutcome: ...


class SyncStore(Protocol):
    def synced_versions(self, refs: Sequence[ProfileRef]) -> dict[ProfileRef, int]: ...
    def mark_synced(self, shop: str, profile_key: str, version: int, klaviyo_profile_id: str | None = None) -> None: ...


@dataclass
class SyncReport:
    received: int = 0
    pushed: int = 0
    stale: int = 0
    """Not newer than the version Klaviyo already has (a replay or a late delivery)."""
    gone: int = 0
    """The profile no longer exists (redacted or deleted)."""
    failed: set[int] = field(default_factory=set)
    """Indexes into the received batch that must be retried."""
    lag_seconds: list[float] = field(default_factory=list)


class SegmentSync:
    """Takes a batch of changes (any order, with replays) and pushes each profile's newest snapshot once."""

    def __init__(self, store: SyncStore, pusher_for_shop: Callable[[str], Pusher | None], clock: Clock) -> None:
        self._store = store
        self._pusher_for_shop = pusher_for_shop
        self._clock = clock

    def sync(self, changes: Sequence[SegmentChange]) -> SyncReport:
        """Push every change newer than what Klaviyo already has; older replays are dropped.

        Several fresh versions of one profile go to the pusher together: it upserts the newest
        snapshot once and still sends each version's entered/exited events.
        """
        report = SyncReport(received=len(changes))
        refs = [(change.shop, change.profile_key) for change in changes]
        synced = self._store.synced_versions(refs)
        by_shop: dict[str, list[int]] = {}
        for index, (ref, change) in enumerate(zip(refs, changes, strict=True)):
            if ref not in synced:
                report.gone += 1
            elif change.version <= synced[ref]:
                report.stale += 1
            else:
                by_shop.setdefault(change.shop, []).append(index)
        for shop, indexes in by_shop.items():
            report.failed |= self._push_shop(shop, [changes[i] for i in indexes], indexes, report)
        return report

    def _push_shop(self, shop: str, batch: list[SegmentChange], indexes: list[int], report: SyncReport) -> set[int]:
        pusher = self._pusher_for_shop(shop)
        if pusher is None:
            logger.error("No Klaviyo account configured for shop; changes kept for retry", extra={"shop": shop})
            return set(indexes)
        outcome = pusher.push(batch)
        now = self._clock.now()
        newest: dict[str, int] = {}
        for position, change in enumerate(batch):
            if position in outcome.failed:
                continue
            report.pushed += 1
            report.lag_seconds.append((now - change.changed_at).total_seconds())
            if change.profile_key not in newest or batch[newest[change.profile_key]].version < change.version:
                newest[change.profile_key] = position
        for position in newest.values():
            change = batch[position]
            klaviyo_id = outcome.klaviyo_profile_ids.get(position)
            self._store.mark_synced(change.shop, change.profile_key, change.version, klaviyo_id)
        return {indexes[position] for position in outcome.failed}
