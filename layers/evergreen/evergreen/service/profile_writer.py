"""Load, apply, re-evaluate and write one profile (and the order an event is about) with optimistic concurrency.

One write costs one consistent BatchGetItem (the profile, the order item, the guest profile a customer may
absorb) and one conditional write: an UpdateItem, or a TransactWriteItems when an order item is written or a
guest is merged. Re-delivery is found by that read; nothing is written for it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from aws_lambda_powertools import Logger

from evergreen.clock import Clock
from evergreen.domain.changes import UNDELIVERED_SINCE, ProfileErasure, SegmentChange
from evergreen.domain.erasure import NO_GUARD, ErasureGuard
from evergreen.domain.orders import OrderState
from evergreen.domain.profile import Profile
from evergreen.segments import Definitions
from evergreen.service.membership import reevaluate
from evergreen.service.ports import ChangePublisher, OrderItem, ProfileStore, Snapshot, VersionConflict
from evergreen.service.routing import GUEST_PREFIX, guest_key, profile_at

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
    ERASED = "erased"
    """The delivery names an erased customer, order, address or shop (a tombstone): nothing written or sent."""


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


class WriteHandoff(Protocol):
    """The exact-instant path, as a write sees it (service/transitions.py's TransitionScheduler)."""

    def hand_off_written(self, profile: Profile, before: Profile | None) -> bool: ...


class ConflictsExhausted(Exception):
    """The profile kept changing under us; the caller answers 5xx so the sender retries."""


Reducer = Callable[[Profile], Profile]
OrderReducer = Callable[[Profile, OrderState | None], tuple[Profile, OrderState]]
Merge = Callable[[Profile, Profile], Profile]


class _Reroute(Exception):
    """The order belongs to another profile: write there instead."""

    def __init__(self, target: Profile) -> None:
        super().__init__("order owned elsewhere")
        self.target = target


class ProfileWriter:
    """The one place profiles are written: load, apply, re-evaluate, conditional write, enqueue."""

    def __init__(
        self,
        store: ProfileStore,
        publisher: ChangePublisher,
        definitions: Definitions,
        clock: Clock,
        retry: RetryPolicy | None = None,
        handoff: WriteHandoff | None = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._definitions = definitions
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._handoff = handoff

    def write(
        self,
        blank: Profile,
        reducer: Reducer,
        delivery_id: str | None = None,
        merge: Merge | None = None,
        guest_email: str | None = None,
        guard: ErasureGuard = NO_GUARD,
    ) -> WriteResult:
        """Apply `reducer` to the stored profile at `blank.key` (or to `blank` when none is stored).

        A delivery id already applied in this shop makes the call a no-op. With `merge`, a guest profile
        with the result's email is folded in and deleted in the same transaction; `guest_email` is
        the email the event names, so that guest is read with the profile. A tombstone in `guard`
        (read with the profile) makes it a no-op too (`Outcome.ERASED`).
        """
        return self._write(
            blank, None, lambda profile, _: (reducer(profile), None), delivery_id, merge, guest_email, guard
        )

    def write_order(
        self,
        blank: Profile,
        order_id: str,
        reducer: OrderReducer,
        delivery_id: str | None = None,
        merge: Merge | None = None,
        guest_email: str | None = None,
        guard: ErasureGuard = NO_GUARD,
    ) -> WriteResult:
        """Apply an order event to the profile and the order's item together, in one transaction.

        The order's item names its owner: when that is another profile, the write goes there, so an
        order counts for exactly one profile.
        """
        return self._write(blank, order_id, reducer, delivery_id, merge, guest_email, guard)

    def _write(
        self,
        blank: Profile,
        order_id: str | None,
        reducer: Callable[[Profile, OrderState | None], tuple[Profile, OrderState | None]],
        delivery_id: str | None,
        merge: Merge | None,
        guest_email: str | None,
        guard: ErasureGuard,
    ) -> WriteResult:
        target = blank
        received_at = self._clock.now()
        retry = self._retry
        deadline = retry.monotonic() + retry.budget_seconds
        attempt = 0
        for attempt in range(1, retry.max_attempts + 1):
            started = retry.monotonic()
            hint = guest_email if merge is not None and target.customer_id is not None else None
            wanted_guest = guest_key(target.shop, hint) if hint else None
            snapshot = self._store.load_for_write(
                target.shop, target.key, order_id, wanted_guest, delivery_id=delivery_id, tombstones=guard.tombstones
            )
            if guard.blocked_by(snapshot.erased):
                return WriteResult(Outcome.ERASED)
            loaded = snapshot.profile
            if snapshot.seen:
                return WriteResult(Outcome.DUPLICATE, loaded)
            try:
                outcome = self._attempt(
                    target, order_id, reducer, snapshot, wanted_guest, merge, delivery_id, received_at, guard
                )
            except _Reroute as reroute:
                target = reroute.target
                continue
            except VersionConflict:
                now = retry.monotonic()
                pause = retry.pause(attempt, now - started)
                if attempt == retry.max_attempts or now + pause > deadline:
                    break
                logger.debug("Profile changed concurrently; retrying", extra={"attempt": attempt})
                retry.sleep(pause)
                continue
            if outcome.outcome is Outcome.WRITTEN and delivery_id is not None and order_id is None:
                self._remember(target.shop, delivery_id)
            return outcome
        logger.warning("Profile kept changing; answering 5xx so the sender retries", extra={"attempts": attempt})
        raise ConflictsExhausted("the profile kept changing concurrently")

    def _attempt(
        self,
        target: Profile,
        order_id: str | None,
        reducer: Callable[[Profile, OrderState | None], tuple[Profile, OrderState | None]],
        snapshot: Snapshot,
        wanted_guest: str | None,
        merge: Merge | None,
        delivery_id: str | None,
        received_at: datetime,
        guard: ErasureGuard,
    ) -> WriteResult:
        loaded, stored = snapshot.profile, snapshot.order
        base = loaded or target
        if stored is not None and stored.owner is not None:
            base = self._adopt(base, loaded, stored, snapshot)
        applied, state = reducer(base, stored.state if stored is not None else None)
        guest = self._guest_to_merge(loaded, applied, snapshot.guest, wanted_guest) if merge else None
        if guest is not None and merge is not None:
            applied = merge(applied, guest)
        owner_changes = stored is not None and stored.owner != applied.key
        guest_owned = snapshot.guest is not None and stored is not None and stored.owner == snapshot.guest.key
        if guest_owned and owner_changes and (guest is None or stored is None or guest.key != stored.owner):
            raise _Reroute(profile_at(applied.shop, snapshot.guest.key if snapshot.guest else applied.key))
        order_changed = state is not None and (stored is None or state != stored.state or owner_changes)
        if loaded is not None and applied == loaded and guest is None and not order_changed:
            return WriteResult(Outcome.UNCHANGED, loaded)
        if applied.order_stats.needs_rebuild:
            applied = self._rebuilt(applied, order_id, state)
        expected = loaded.version if loaded else 0
        now = self._clock.now()
        result = reevaluate(applied, self._definitions, now, expected + 1)
        if result.change is not None:  # carried to SegmentSync for the EventToKlaviyoMs metric
            result = replace(result, change=result.change.model_copy(update={"received_at": received_at}))
        order = None
        if order_changed and order_id is not None and state is not None:
            version = stored.version if stored is not None else 0
            order = OrderItem(applied.shop, order_id, applied.key, state, version)
        self._store.save(result.profile, expected, result.change, now, order=order, guest=guest, guard=guard)
        self.enqueue(result.change)
        self._hand_off(result.profile, loaded)
        return WriteResult(Outcome.WRITTEN, result.profile, result.entered, result.exited, before=loaded)

    def _remember(self, shop: str, delivery_id: str) -> None:
        """Note the applied delivery, so a redelivery writes nothing (best effort: applying is idempotent).

        An order event needs no note: its order item keeps the snapshot it applied, so its redelivery finds the
        order unchanged and writes nothing either.
        """
        try:
            self._store.remember_delivery(shop, delivery_id, self._clock.now())
        except Exception:
            logger.exception("Could not note the delivery; a redelivery is applied again and changes nothing")

    def _adopt(self, base: Profile, loaded: Profile | None, stored: OrderItem, snapshot: Snapshot) -> Profile:
        """The profile to apply an order event to, given that `stored.owner` owns the order.

        The owner's aggregates hold the order's contribution. When the owner is this profile, or a guest
        it absorbed or is about to absorb, nothing is needed. When the owner is another profile that exists,
        the write goes there. When the owner is gone (a guest merged into a customer, found by its email),
        the write goes to that customer; with no successor, this profile takes the order over with its
        contribution.
        """
        owner = stored.owner
        assert owner is not None
        if (owner == base.key and loaded is not None) or owner in base.merged_guests:
            return base
        if snapshot.guest is not None and owner == snapshot.guest.key:
            return base  # merged in this write, or re-routed to the guest after the merge check
        if owner != base.key and self._store.load(base.shop, owner) is not None:
            raise _Reroute(profile_at(base.shop, owner))
        if owner.startswith(GUEST_PREFIX):
            successor = self._store.customer_key_for_email(base.shop, owner.removeprefix(GUEST_PREFIX))
            if successor is not None and successor != base.key:
                raise _Reroute(profile_at(base.shop, successor))
        stats = base.order_stats.replaced(None, stored.state.contribution())
        return base.model_copy(update={"order_stats": stats})

    def _rebuilt(self, applied: Profile, order_id: str | None, state: OrderState | None) -> Profile:
        """The profile with its order windows rebuilt from its order items (a window ran out).

        The items are listed by an eventually consistent index; the rebuild must agree with the exact
        count and net spent, or the write is retried.
        """
        states: dict[str, OrderState] = {}
        for owner in (applied.key, *applied.merged_guests):
            for item in self._store.orders_of(applied.shop, owner):
                states[item.order_id] = item.state
        if order_id is not None and state is not None:
            states[order_id] = state
        stats = applied.order_stats.rebuilt(states.values())
        exact = applied.order_stats
        if (stats.count, stats.net_spent) != (exact.count, exact.net_spent) or stats.needs_rebuild:
            logger.info("Order index not caught up; retrying")
            raise VersionConflict("order index behind")
        return applied.model_copy(update={"order_stats": stats})

    def _hand_off(self, profile: Profile, before: Profile | None) -> None:
        """Give a transition this write set within the lookahead to the exact-instant path (best effort: the
        profile stays in the due index, so the next sweep applies it if this send fails)."""
        if self._handoff is None:
            return
        try:
            self._handoff.hand_off_written(profile, before)
        except Exception:
            logger.exception("Hand-off to the transitions queue failed; the next sweep applies this transition")

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

    def _guest_to_merge(
        self, loaded: Profile | None, applied: Profile, prefetched: Profile | None, prefetched_key: str | None
    ) -> Profile | None:
        if applied.customer_id is None or applied.email_normalized is None:
            return None
        if loaded is not None and loaded.email_normalized == applied.email_normalized:
            return None
        key = guest_key(applied.shop, applied.email_normalized)
        if key == prefetched_key:
            return prefetched
        return self._store.load(applied.shop, key)
