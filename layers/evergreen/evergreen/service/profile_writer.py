"""Load, apply, re-evaluate and write one profile with optimistic concurrency."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from aws_lambda_powertools import Logger

from evergreen.clock import Clock
from evergreen.domain.changes import SegmentChange
from evergreen.domain.membership import reevaluate
from evergreen.domain.profile import Profile
from evergreen.segments import Definitions
from evergreen.service.ports import ChangePublisher, ProfileStore
from evergreen.storage.profiles import VersionConflict

logger = Logger(child=True)

MAX_ATTEMPTS = 64
"""An upper bound only: the retry policy's time budget usually ends a losing streak first."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a write that lost a race is retried: jittered exponential backoff within a time budget.

    Writers of one hot profile that retried at once would collide again, and every losing attempt costs the
    table a read and a failed write. Each pause is drawn uniformly from
    [0, min(cap, first_spread_cycles * cycle * 2**(conflicts - 1))), where `cycle` is how long the losing
    attempt took (load + apply + conditional write): the spread starts at a few attempts' worth (a conflict
    means at least one other writer), doubles with each further conflict, and scales with how fast the table
    answers. The budget bounds the whole write inside the function's timeout; a write that is still losing
    then answers 503 and the sender retries.
    """

    max_attempts: int = MAX_ATTEMPTS
    budget_seconds: float = 8.0
    min_cycle_seconds: float = 0.005
    first_spread_cycles: float = 4.0
    cap_seconds: float = 2.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def pause(self, conflicts: int, cycle_seconds: float) -> float:
        """The pause after the `conflicts`-th lost race, whose attempt took `cycle_seconds`."""
        cycle = max(cycle_seconds, self.min_cycle_seconds)
        spread: float = self.first_spread_cycles * cycle * 2.0 ** min(conflicts - 1, 16)
        return self.jitter() * min(self.cap_seconds, spread)


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


class ConflictsExhausted(Exception):
    """The profile kept changing under us; the caller answers 5xx so the sender retries."""


Reducer = Callable[[Profile], Profile]


class ProfileWriter:
    """The one place profiles are written: load, apply, re-evaluate, conditional write, enqueue."""

    def __init__(
        self,
        store: ProfileStore,
        publisher: ChangePublisher,
        definitions: Definitions,
        clock: Clock,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._definitions = definitions
        self._clock = clock
        self._retry = retry or RetryPolicy()

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
        retry = self._retry
        deadline = retry.monotonic() + retry.budget_seconds
        attempt = 0
        for attempt in range(1, retry.max_attempts + 1):
            started = retry.monotonic()
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
            try:
                if guest is not None:
                    self._store.save_merged(result.profile, expected, guest, result.change, self._clock.now())
                else:
                    self._store.save(result.profile, expected, result.change, self._clock.now())
            except VersionConflict:
                now = retry.monotonic()
                pause = retry.pause(attempt, now - started)
                if attempt == retry.max_attempts or now + pause > deadline:
                    break
                logger.debug("Profile changed concurrently; retrying", extra={"attempt": attempt})
                retry.sleep(pause)
                continue
            self.enqueue(result.change)
            return WriteResult(Outcome.WRITTEN, result.profile, result.entered, result.exited, before=loaded)
        logger.warning("Profile kept changing; answering 5xx so the sender retries", extra={"attempts": attempt})
        raise ConflictsExhausted(blank.key)

    def enqueue(self, change: SegmentChange | None) -> bool:
        """Send a change; on failure the outbox index keeps it for the sweep to re-send."""
        if change is None:
            return False
        try:
            self._publisher.publish([change])
        except Exception:
            logger.exception("Enqueue failed; the sweep will re-send from the outbox")
            return False
        return True

    def _guest_to_merge(self, loaded: Profile | None, applied: Profile) -> Profile | None:
        if applied.customer_id is None or applied.email_normalized is None:
            return None
        if loaded is not None and loaded.email_normalized == applied.email_normalized:
            return None
        guest_key = Profile(shop=applied.shop, email_normalized=applied.email_normalized).key
        return self._store.load(applied.shop, guest_key)
