"""Push segment changes to Klaviyo, newest version per profile, and record what reached it.

Also handles erasures (a redacted customer) and list moves (a segment mapped to another list), and decides,
for each message that failed, when it is delivered again (`redelivery_delay_s`) or whether it is poison that
retrying cannot fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from evergreen.clock import Clock
from evergreen.domain.changes import (
    ErasedProfile,
    ListMove,
    ProfileErasure,
    QueueMessage,
    SegmentChange,
    external_id,
    parse_queue_message,
)
from evergreen.domain.list_moves import MemberListChange, member_lists
from evergreen.service.ports import ListMemberNow, SyncMark

logger = Logger(child=True)

ProfileRef = tuple[str, str]


RETRY_BASE_S = 15
"""First redelivery delay after a Klaviyo 5xx, timeout or edge block; it doubles per receive."""
RETRY_CAP_S = 60
"""Longest back-off between two tries of one message: once Klaviyo is back, a message waits at most this."""
RETRY_AFTER_CAP_S = 300
"""Longest wait honoured from a `Retry-After`, so maxReceiveCount x this stays inside the queue's retention."""
RETRY_JITTER = 0.1
"""Back-off is shortened by up to this fraction at random, so failed messages do not return in lock-step."""


def read_queue_message(body: str | bytes) -> QueueMessage | None:
    """A segment-changes queue message (a change or an erasure), or None when it is neither (poison)."""
    try:
        return parse_queue_message(body)
    except ValidationError:
        return None


class PushOutcome(Protocol):
    @property
    def failed(self) -> set[int]: ...
    @property
    def klaviyo_profile_ids(self) -> dict[int, str]: ...
    @property
    def poison(self) -> set[int]: ...
    @property
    def retry_after_s(self) -> dict[int, float]: ...
    @property
    def errors(self) -> dict[int, str]: ...
    @property
    def job_waits_s(self) -> dict[int, float]: ...
    @property
    def profiles_refused(self) -> int: ...
    @property
    def phones_left_out(self) -> int: ...
    @property
    def jobs_unfinished(self) -> int: ...


class EraseOutcome(Protocol):
    @property
    def failed(self) -> bool: ...
    @property
    def poison(self) -> bool: ...
    @property
    def retry_after_s(self) -> float | None: ...
    @property
    def error(self) -> str | None: ...


class Pusher(Protocol):
    @property
    def list_ids(self) -> Mapping[str, str]: ...
    def push(
        self, changes: Sequence[SegmentChange], *, time_left_s: Callable[[], float] | None = None
    ) -> PushOutcome: ...
    def erase(self, erasure: ProfileErasure, *, delete_in_klaviyo: bool = False) -> EraseOutcome: ...
    def move_lists(
        self, changes: Sequence[MemberListChange], *, time_left_s: Callable[[], float] | None = None
    ) -> PushOutcome: ...


class SyncStore(Protocol):
    def synced_versions(self, refs: Sequence[ProfileRef]) -> dict[ProfileRef, int]: ...
    def list_members_now(self, refs: Sequence[ProfileRef]) -> dict[ProfileRef, ListMemberNow]: ...
    def mark_synced_many(self, marks: Sequence[SyncMark]) -> None:
        """Record each version that reached Klaviyo (and clear its outbox entry unless a newer change waits)."""
        ...


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
    poison: set[int] = field(default_factory=set)
    """Failed indexes that retrying cannot fix (Klaviyo refused them with a 4xx): for the DLQ."""
    retry_after_s: dict[int, float] = field(default_factory=dict)
    """Failed indexes Klaviyo throttled, with its `Retry-After`."""
    errors: dict[int, str] = field(default_factory=dict)
    """Why failed indexes failed (operation and status, never PII)."""
    erased: int = 0
    """Erasures (redacted customers) completed in Klaviyo."""
    list_members_moved: int = 0
    """Members of list-move messages that joined a new list or left an old one."""
    lag_seconds: list[float] = field(default_factory=list)
    event_to_klaviyo_ms: list[float] = field(default_factory=list)
    """For each pushed change a webhook caused: from the webhook reaching Evergreen to Klaviyo having imported it
    (its answer, or its bulk job seen complete)."""
    event_to_klaviyo_accepted_ms: list[float] = field(default_factory=list)
    """The same changes, to Klaviyo's acceptance (a bulk job's 202; the same as above for a synchronous call)."""
    transition_lateness_ms: list[float] = field(default_factory=list)
    """For each pushed change that time alone made: from its exact instant to Klaviyo having imported it."""
    profiles_refused: int = 0
    """Profiles a bulk job refused for good (an invalid value): their changes are poison."""
    phones_left_out: int = 0
    """Profiles sent without their phone, because Klaviyo would refuse the number."""
    jobs_unfinished: int = 0
    """Bulk jobs still running when the invocation had to stop: their changes are retried."""
    shops: set[str] = field(default_factory=set)
    """Shops whose changes reached Klaviyo (their segment totals may have moved)."""


class SegmentSync:
    """Takes a batch of changes (any order, with replays) and pushes each profile's newest snapshot once."""

    def __init__(
        self,
        store: SyncStore,
        pusher_for_shop: Callable[[str], Pusher | None],
        clock: Clock,
        *,
        delete_profiles_in_klaviyo: bool = False,
    ) -> None:
        """`delete_profiles_in_klaviyo`: an erasure also requests Klaviyo's own data-privacy deletion."""
        self._store = store
        self._pusher_for_shop = pusher_for_shop
        self._clock = clock
        self._delete_in_klaviyo = delete_profiles_in_klaviyo

    def handle(self, messages: Sequence[QueueMessage], *, time_left_s: Callable[[], float] | None = None) -> SyncReport:
        """A queue batch of changes, erasures and list moves; indexes in the report refer to `messages`.

        `time_left_s` is how long bulk jobs may still be followed (the invocation's time, less a margin).
        """
        change_indexes = [i for i, m in enumerate(messages) if isinstance(m, SegmentChange)]
        changes = [m for m in messages if isinstance(m, SegmentChange)]
        report = self.sync(changes, time_left_s=time_left_s)
        report.received = len(messages)
        report.failed = {change_indexes[i] for i in report.failed}
        report.poison = {change_indexes[i] for i in report.poison}
        report.retry_after_s = {change_indexes[i]: after for i, after in report.retry_after_s.items()}
        report.errors = {change_indexes[i]: error for i, error in report.errors.items()}
        for index, message in enumerate(messages):
            if isinstance(message, ProfileErasure):
                self._erase(index, message, report)
        moves = [(index, message) for index, message in enumerate(messages) if isinstance(message, ListMove)]
        if moves:
            self._move_lists(moves, report, time_left_s)
        return report

    def _move_lists(
        self, moves: Sequence[tuple[int, ListMove]], report: SyncReport, time_left_s: Callable[[], float] | None
    ) -> None:
        """Apply list moves to each member as the table has it now (see `domain.list_moves.member_lists`).

        A deleted member is skipped (its erasure left the lists). One Klaviyo does not know yet joins no list
        (an import by external id alone would create a bare profile): its own first sync adds it.
        """
        now = self._store.list_members_now([(move.shop, m.profile_key) for _, move in moves for m in move.members])
        by_shop: dict[str, list[tuple[int, ListMove]]] = {}
        for index, move in moves:
            by_shop.setdefault(move.shop, []).append((index, move))
        for shop, shop_moves in by_shop.items():
            pusher = self._pusher_for_shop(shop)
            if pusher is None:
                logger.error("No Klaviyo account configured for shop; list move kept for retry", extra={"shop": shop})
                report.failed |= {index for index, _ in shop_moves}
                continue
            changes: list[MemberListChange] = []
            for index, move in shop_moves:
                for member in move.members:
                    found = now.get((shop, member.profile_key))
                    if found is None:
                        continue
                    join, leave = member_lists(move, found.segments, pusher.list_ids)
                    if join is not None and not found.synced:
                        join = None
                    if join is not None or leave:
                        klaviyo_id = found.klaviyo_profile_id or member.klaviyo_profile_id
                        changes.append(
                            MemberListChange(index, external_id(shop, member.profile_key), klaviyo_id, join, leave)
                        )
            outcome = pusher.move_lists(changes, time_left_s=time_left_s)
            report.failed |= _charge_failures(outcome, report, lambda index: index)
            report.list_members_moved += sum(1 for change in changes if change.message not in outcome.failed)

    def _erase(self, index: int, erasure: ProfileErasure, report: SyncReport) -> None:
        """Erasures do not consult the table: the profile rows are gone by the time they arrive."""
        pusher = self._pusher_for_shop(erasure.shop)
        if pusher is None:
            logger.error("No Klaviyo account configured for shop; erasure kept for retry", extra={"shop": erasure.shop})
            report.failed.add(index)
            return
        outcome = pusher.erase(erasure, delete_in_klaviyo=self._delete_in_klaviyo)
        if not outcome.failed:
            report.erased += 1
            logger.info("Redacted customer cleared in Klaviyo", extra={"shop": erasure.shop})
            return
        logger.warning("Erasure not completed", extra={"shop": erasure.shop, "reason": outcome.error})
        report.failed.add(index)
        report.errors[index] = outcome.error or "erase failed"
        if outcome.poison:
            report.poison.add(index)
        if outcome.retry_after_s is not None:
            report.retry_after_s[index] = outcome.retry_after_s

    def sync(self, changes: Sequence[SegmentChange], *, time_left_s: Callable[[], float] | None = None) -> SyncReport:
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
            report.failed |= self._push_shop(shop, [changes[i] for i in indexes], indexes, report, time_left_s)
        return report

    def _push_shop(
        self,
        shop: str,
        batch: list[SegmentChange],
        indexes: list[int],
        report: SyncReport,
        time_left_s: Callable[[], float] | None,
    ) -> set[int]:
        pusher = self._pusher_for_shop(shop)
        if pusher is None:
            logger.error("No Klaviyo account configured for shop; changes kept for retry", extra={"shop": shop})
            return set(indexes)
        outcome = pusher.push(batch, time_left_s=time_left_s)
        now = self._clock.now()
        _note_job_outcome(shop, outcome, report)
        newest: dict[str, int] = {}
        for position, change in enumerate(batch):
            if position in outcome.failed:
                continue
            report.pushed += 1
            report.shops.add(change.shop)
            report.lag_seconds.append((now - change.changed_at).total_seconds())
            if change.received_at is not None:
                to_import_ms = (now - change.received_at).total_seconds() * 1000
                report.event_to_klaviyo_ms.append(to_import_ms)
                report.event_to_klaviyo_accepted_ms.append(to_import_ms - outcome.job_waits_s.get(position, 0.0) * 1000)
            if change.transition_at is not None:
                report.transition_lateness_ms.append(max(0.0, (now - change.transition_at).total_seconds() * 1000))
            if change.profile_key not in newest or batch[newest[change.profile_key]].version < change.version:
                newest[change.profile_key] = position
        self._store.mark_synced_many(
            [SyncMark.of(batch[p], outcome.klaviyo_profile_ids.get(p)) for p in newest.values()]
        )
        self._erase_again_if_redacted(pusher, batch, newest, outcome)
        return _charge_failures(outcome, report, indexes.__getitem__)

    def _erase_again_if_redacted(
        self, pusher: Pusher, batch: list[SegmentChange], newest: Mapping[str, int], outcome: PushOutcome
    ) -> None:
        """A redact that deleted a profile while its push was in flight may have had its erasure applied in
        Klaviyo before the push landed: look again after the push, and erase what is gone since (best effort,
        idempotent), so that Klaviyo's last word about a redacted customer is always an erasure."""
        if not newest:
            return
        refs = [(batch[p].shop, batch[p].profile_key) for p in newest.values()]
        still = self._store.synced_versions(refs)
        gone = [p for p in newest.values() if (batch[p].shop, batch[p].profile_key) not in still]
        if not gone:
            return
        erasure = ProfileErasure(
            shop=batch[gone[0]].shop,
            profiles=[
                ErasedProfile(external_id=batch[p].external_id, klaviyo_profile_id=outcome.klaviyo_profile_ids.get(p))
                for p in gone
            ],
            segments=sorted({segment for p in gone for segment in batch[p].segments}),
            requested_at=self._clock.now(),
        )
        logger.info("Profiles redacted during their push; erasing them again", extra={"profiles": len(gone)})
        pusher.erase(erasure, delete_in_klaviyo=self._delete_in_klaviyo)


def _note_job_outcome(shop: str, outcome: PushOutcome, report: SyncReport) -> None:
    """Count (and log, without the values) phones left out, profiles Klaviyo refused and jobs left unfinished."""
    report.phones_left_out += outcome.phones_left_out
    report.profiles_refused += outcome.profiles_refused
    report.jobs_unfinished += outcome.jobs_unfinished
    if outcome.phones_left_out:
        logger.warning(
            "Phone numbers Klaviyo would refuse left out of the import; those profiles sync by external id and email",
            extra={"shop": shop, "phones_left_out": outcome.phones_left_out},
        )
    if outcome.profiles_refused:
        reasons = sorted({outcome.errors[i] for i in outcome.poison if i in outcome.errors})
        logger.error(
            "Klaviyo refused profiles in a bulk import job; their changes are dead-lettered",
            extra={"shop": shop, "profiles_refused": outcome.profiles_refused, "reasons": reasons},
        )
    if outcome.jobs_unfinished:
        logger.warning(
            "Bulk import jobs still running when the invocation had to stop; their changes are retried",
            extra={"shop": shop, "jobs_unfinished": outcome.jobs_unfinished},
        )


def _charge_failures(outcome: PushOutcome, report: SyncReport, index_of: Callable[[int], int]) -> set[int]:
    """Copy the outcome's poison, errors and Retry-After into the report; returns the batch indexes that failed.

    `index_of` turns an index of the outcome into one of the received batch.
    """
    report.poison |= {index_of(position) for position in outcome.poison & outcome.failed}
    report.errors.update({index_of(p): error for p, error in outcome.errors.items() if p in outcome.failed})
    for position, after in outcome.retry_after_s.items():
        if position in outcome.failed:
            report.retry_after_s[index_of(position)] = after
    return {index_of(position) for position in outcome.failed}


def redelivery_delay_s(receive_count: int, retry_after_s: float | None = None, jitter: float = 0.0) -> int:
    """Seconds a failed message stays invisible before its next try.

    Exponential back-off from `RETRY_BASE_S`, capped at `RETRY_CAP_S` (so a message tries again within a
    minute of Klaviyo's recovery), shortened by `jitter` (0..RETRY_JITTER); never sooner than Klaviyo's
    `Retry-After`, itself capped at `RETRY_AFTER_CAP_S`.
    """
    attempt = max(1, receive_count)
    doubled = float(RETRY_BASE_S) * 2.0 ** min(attempt - 1, 16)
    backoff = min(float(RETRY_CAP_S), doubled) * (1.0 - min(max(jitter, 0.0), RETRY_JITTER))
    wanted = max(backoff, min(retry_after_s or 0.0, float(RETRY_AFTER_CAP_S)))
    return math.ceil(wanted)


@dataclass
class RedeliveryPlan:
    """For a handled batch: how long each retryable failure waits, and the poison with its reason."""

    delays_s: dict[int, int] = field(default_factory=dict)
    poison: dict[int, str] = field(default_factory=dict)


def plan_redelivery(report: SyncReport, receive_counts: Sequence[int], jitter: Callable[[], float]) -> RedeliveryPlan:
    """Indexes refer to the handled messages; `receive_counts[i]` is SQS's ApproximateReceiveCount of message i."""
    plan = RedeliveryPlan()
    for index in sorted(report.failed):
        if index in report.poison:
            plan.poison[index] = report.errors.get(index, "rejected by Klaviyo")
        else:
            plan.delays_s[index] = redelivery_delay_s(receive_counts[index], report.retry_after_s.get(index), jitter())
    return plan
