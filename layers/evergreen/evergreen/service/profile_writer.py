"""Load, apply, re-evaluate and write one profile with optimistic concurrency."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from aws_lambda_powertools import Logger

from evergreen.clock import Clock
from evergreen.domain.changes import UNDELIVERED_SINCE, ProfileErasure, SegmentChange
from evergreen.domain.membership import reevaluate
from evergreen.domain.profile import Profile
from evergreen.segments import Definitions
from evergreen.service.ports import ChangePublisher, ProfileStore
from evergreen.storage.profiles import VersionConflict

logger = Logger(child=True)

MAX_ATTEMPTS = 8


class Outcome(StrEnum):
    WRITTEN = "written"
    DUPLICATE = "duplicate"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class WriteResult:
    outcome: Outcome
    profile: Profile | None = None
    entered: tuple[str, ...] = ()
    exited: tuple[str, ...] = ()
    before: Profile | None = None
    """The profile as it was stored before this write (None when it is new)."""


class OutboxStore(Protocol):
    def touch_unsynced(self, change: SegmentChange, now: datetime) -> None: ...


def mark_undelivered(store: OutboxStore, changes: Sequence[SegmentChange]) -> None:
    """Date these outbox entries as never sent, so the next sweep re-sends them without a grace period.

    Best effort: if this write fails too, the grace period still catches them.
    """
    for change in changes:
        try:
            store.touch_unsynced(change, UNDELIVERED_SINCE)
        except Exception:
            logger.exception("Could not mark a change undelivered; the grace period will catch it")


class ConflictsExhausted(Exception):
    """The profile kept changing under us; the caller answers 5xx so the sender retries."""


Reducer = Callable[[Profile], Profile]


class ProfileWriter:
    """The one place profiles are written: load, apply, re-evaluate, conditional write, enqueue."""

    def __init__(self, store: ProfileStore, publisher: ChangePublisher, definitions: Definitions, clock: Clock) -> None:
        self._store = store
        self._publisher = publisher
        self._definitions = definitions
        self._clock = clock

    def write(
        self,
        blank: Profile,
        reducer: Reducer,
        delivery_id: str | None = None,
        merge: Callable[[Profile, Profile], Profile] | None = None,
    ) -> WriteResult:
        """Apply `reducer` to the stored profile at `blank.key` (or to `blank` when none is stored).

        A delivery id the profile has seen makes the call a no-op. With `merge`, a guest profile
        with the result's email is folded in and deleted in the same transaction.
        """
        received_at = self._clock.now()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            loaded = self._store.load(blank.shop, blank.key)
            if loaded is not None and loaded.has_seen(delivery_id):
                return WriteResult(Outcome.DUPLICATE, loaded)
            base = loaded or blank
            applied = reducer(base)
            guest = self._guest_to_merge(loaded, applied) if merge else None
            if guest is not None and merge is not None:
                applied = merge(applied, guest)
            if loaded is not None and applied == loaded and guest is None:
                return WriteResult(Outcome.UNCHANGED, loaded)
            expected = loaded.version if loaded else 0
            result = reevaluate(applied.remember(delivery_id), self._definitions, self._clock.now(), expected + 1)
            if result.change is not None:  # carried to SegmentSync for the EventToKlaviyoMs metric
                result = replace(result, change=result.change.model_copy(update={"received_at": received_at}))
            try:
                if guest is not None:
                    self._store.save_merged(result.profile, expected, guest, result.change, self._clock.now())
                else:
                    self._store.save(result.profile, expected, result.change, self._clock.now())
            except VersionConflict:
                logger.info("Profile changed concurrently; retrying", extra={"attempt": attempt})
                continue
            self.enqueue(result.change)
            return WriteResult(Outcome.WRITTEN, result.profile, result.entered, result.exited, before=loaded)
        raise ConflictsExhausted(blank.key)

    def enqueue(self, change: SegmentChange | None) -> bool:
        """Send a change; on failure the outbox index keeps it for the sweep to re-send."""
        if change is None:
            return False
        try:
            self._publisher.publish([change])
        except Exception:
            logger.exception("Enqueue failed; the next sweep re-sends it from the outbox")
            mark_undelivered(self._store, [change])
            return False
        return True

    def enqueue_erasure(self, erasure: ProfileErasure | None) -> None:
        """Send a redacted customer's Klaviyo clean-up; raises when it cannot (the redaction must then wait)."""
        if erasure is not None:
            self._publisher.publish_erasure(erasure)

    def _guest_to_merge(self, loaded: Profile | None, applied: Profile) -> Profile | None:
        if applied.customer_id is None or applied.email_normalized is None:
            return None
        if loaded is not None and loaded.email_normalized == applied.email_normalized:
            return None
        guest_key = Profile(shop=applied.shop, email_normalized=applied.email_normalized).key
        return self._store.load(applied.shop, guest_key)
