"""After a backfill: each touched profile's membership to Klaviyo once, through bulk jobs.

- Profiles go in bulk profile import jobs (up to 10,000 profiles / 5 MB each), grouped by the Klaviyo
  lists their segments map to, which the job's list relationship adds them to.
- "Entered segment" / "Exited segment" events are NOT sent by default: a merchant's flows must not greet
  years of customers at once. With `fire_segment_events`, they go in bulk event jobs (1,000 events each).
- A profile that left a mapped list it was in before the backfill is removed from it (when Klaviyo's id
  for the profile is known; otherwise it was never added by Evergreen).
- Each job is followed until Klaviyo ends it (klaviyo/job_follower.py). Only a profile Klaviyo imported is
  marked synced at its version, which also clears its outbox entry, so the sweep does not re-send it through
  the per-change path. A cancelled or unfinished job fails the flush (the backfill is run again); a profile
  Klaviyo refused for good (an invalid email, say) stays in the outbox, so the sweep sends it through the
  per-change path, which dead-letters it with Klaviyo's reason.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from evergreen.domain.changes import SegmentChange
from evergreen.domain.profile import Profile
from evergreen.klaviyo import requests as kr
from evergreen.klaviyo.errors import KlaviyoError
from evergreen.klaviyo.job_follower import Charge, FollowedJob, JobFollower
from evergreen.klaviyo.jobs import JobFollow
from evergreen.klaviyo.pusher import KlaviyoSender
from evergreen.service.membership import snapshot_change
from evergreen.service.ports import SyncMark
from evergreen.service.sync import SyncStore

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class Touched:
    """A profile the backfill wrote: its segments before the backfill and the profile now."""

    before: frozenset[str]
    profile: Profile


@dataclass
class BulkSyncReport:
    profiles: int = 0
    bulk_profile_jobs: int = 0
    bulk_event_jobs: int = 0
    list_removals: int = 0
    requests: int = 0
    failed: int = 0
    refused: int = 0
    """Profiles Klaviyo refused for good: left in the outbox for the per-change path to dead-letter."""
    errors: list[str] = field(default_factory=list)
    profile_keys: set[str] = field(default_factory=set)
    """The distinct profiles Klaviyo imported (`profiles` counts job entries: one profile may be in several)."""


class MembershipSync(Protocol):
    def push(self, touched: Sequence[Touched], now: datetime) -> BulkSyncReport: ...


def snapshot(touched: Touched, now: datetime, with_events: bool) -> SegmentChange:
    """The profile's membership (and fact properties) as one change; entered/exited only when events are wanted."""
    profile = touched.profile
    change = snapshot_change(profile, profile.version, now)
    if not with_events:
        return change
    segments = set(profile.membership)
    return change.model_copy(
        update={"entered": sorted(segments - touched.before), "exited": sorted(touched.before - segments)}
    )


class BulkMembershipSync:
    """Pushes backfilled profiles through Klaviyo's bulk endpoints and records what reached it."""

    def __init__(
        self,
        sender: KlaviyoSender,
        list_ids: Mapping[str, str],
        store: SyncStore,
        *,
        fire_segment_events: bool = False,
        job_follow: JobFollow | None = None,
    ) -> None:
        self._sender = sender
        self._list_ids = dict(list_ids)
        self._store = store
        self._fire_events = fire_segment_events
        self._follow = job_follow or JobFollow(clock=time.monotonic, sleep=time.sleep)

    def _sent(self, request: kr.KlaviyoRequest, report: BulkSyncReport) -> httpx.Response:
        report.requests += 1
        try:
            return self._sender.send(request)
        except KlaviyoError as error:
            report.errors.append(f"{error.operation}: {error.status or type(error).__name__}")
            raise

    def _send(self, request: kr.KlaviyoRequest, report: BulkSyncReport) -> bool:
        try:
            self._sent(request, report)
        except KlaviyoError:
            return False
        return True

    def push(self, touched: Sequence[Touched], now: datetime) -> BulkSyncReport:
        report = BulkSyncReport()
        changes = [snapshot(item, now, self._fire_events) for item in touched]
        failed: set[int] = set()
        refused: set[int] = set()
        follower = JobFollower(lambda request: self._sent(request, report), self._follow)
        followed: list[FollowedJob] = []
        by_lists: dict[frozenset[str], list[int]] = defaultdict(list)
        for index, change in enumerate(changes):
            lists = frozenset(self._list_ids[s] for s in change.segments if s in self._list_ids)
            by_lists[lists].append(index)
        for lists, indexes in sorted(by_lists.items(), key=lambda item: sorted(item[0])):
            group = [changes[i] for i in indexes]
            for job in kr.plan_bulk_profile_jobs(group):
                members = [indexes[i] for i in job]
                try:
                    response = self._sent(kr.profile_bulk_import([group[i] for i in job], lists), report)
                except KlaviyoError:
                    failed |= set(members)
                    continue
                report.bulk_profile_jobs += 1
                external_ids = [changes[i].external_id for i in members]
                accepted = follower.accepted(response, external_ids, _charge(changes, members, failed, refused, report))
                if accepted is None:
                    report.errors.append(f"{kr.OP_BULK_PROFILES}: no job id")
                    failed |= set(members)
                    continue
                followed.append(accepted)
        follower.follow(followed, None)
        failed -= refused
        report.refused = len(refused)
        not_imported = failed | refused
        self._remove_from_left_lists(touched, changes, not_imported, report)
        if self._fire_events:
            entries = [
                kr.ProfileEvents(change, kr.segment_events(change), change.klaviyo_profile_id)
                for index, change in enumerate(changes)
                if index not in not_imported and (change.entered or change.exited)
            ]
            for event_job in kr.plan_bulk_event_jobs(entries):
                if self._send(kr.bulk_create_events(event_job), report):
                    report.bulk_event_jobs += 1
        synced = [SyncMark.of(c) for i, c in enumerate(changes) if i not in not_imported]
        self._store.mark_synced_many(synced)
        report.profiles += len(synced)
        report.profile_keys.update(mark.profile_key for mark in synced)
        report.failed = len(failed)
        return report

    def _remove_from_left_lists(
        self, touched: Sequence[Touched], changes: Sequence[SegmentChange], failed: set[int], report: BulkSyncReport
    ) -> None:
        removals: dict[str, list[str]] = defaultdict(list)
        for index, (item, change) in enumerate(zip(touched, changes, strict=True)):
            klaviyo_id = item.profile.klaviyo_profile_id
            if index in failed or not klaviyo_id:
                continue
            kept = {self._list_ids[s] for s in change.segments if s in self._list_ids}
            for segment in item.before - set(change.segments):
                list_id = self._list_ids.get(segment)
                if list_id and list_id not in kept:
                    removals[list_id].append(klaviyo_id)
        for list_id in sorted(removals):
            for chunk in kr.pack(sorted(set(removals[list_id])), max_count=kr.MAX_LIST_PROFILES):
                if self._send(kr.remove_profiles_from_list(list_id, chunk), report):
                    report.list_removals += len(chunk)


def _charge(
    changes: Sequence[SegmentChange], members: list[int], failed: set[int], refused: set[int], report: BulkSyncReport
) -> Charge:
    """What a followed job did not import: permanent refusals apart (they are not retried by running again)."""

    def charge(external_ids: set[str], error: KlaviyoError | str, permanent: bool) -> None:
        hit = {index for index in members if changes[index].external_id in external_ids}
        reason = error if isinstance(error, str) else f"{error.operation}: {error.status or type(error).__name__}"
        report.errors.append(reason)
        (refused if permanent else failed).update(hit)

    return charge


class QueueNothing:
    """The publisher of a backfill: changes are not queued one by one, as the outbox keeps them until the bulk
    sync marks them synced. A backfill never erases anyone."""

    def publish(self, changes: Any) -> None:
        return None

    def publish_erasure(self, erasure: Any) -> None:
        raise RuntimeError("a backfill never erases a profile")
