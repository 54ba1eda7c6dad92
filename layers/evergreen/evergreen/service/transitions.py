"""Exact-instant transitions: the sweep hands what falls due before its next run to a delayed queue, and
this consumer re-evaluates each profile at its instant (through the sweep's own re-evaluation)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict

from evergreen.clock import Clock
from evergreen.domain.profile import Profile
from evergreen.service.ports import PageLike
from evergreen.service.sweep import StalenessSweep

logger = Logger(child=True)

MAX_DELAY_SECONDS = 900
"""SQS's longest DelaySeconds: the lookahead can never be longer."""


class DueTransition(BaseModel):
    """The delayed message: re-evaluate this profile at `due_at`, the instant it was scheduled for."""

    model_config = ConfigDict(frozen=True)

    shop: str
    profile_key: str
    due_at: datetime
    version: int
    """The profile version the sweep saw; a different one at `due_at` means an event wrote it since."""


class DelayedSender(Protocol):
    def send_delayed(self, messages: Sequence[tuple[str, int]]) -> None: ...


class HandoffStore(Protocol):
    """A window of the due index, and how far ahead transitions are already handed off (one small item)."""

    def due_between(
        self, shard: int, after: datetime, until: datetime, start: dict[str, Any] | None = None
    ) -> PageLike[Profile]: ...
    def scheduled_through(self) -> datetime | None: ...
    def record_scheduled_through(self, until: datetime) -> None: ...


class ProfileLoader(Protocol):
    def load(self, shop: str, profile_key: str) -> Profile | None: ...


def delay_seconds(due_at: datetime, now: datetime) -> int:
    """Whole seconds to wait so the message arrives at most one second before `due_at` (the consumer waits
    out the rest), never more than SQS allows."""
    return max(0, min(MAX_DELAY_SECONDS, math.floor((due_at - now).total_seconds())))


class TransitionScheduler:
    """The sweep's hand-off: what falls due in the window after this run goes on the transitions queue.

    A run's window starts where the previous run's ended (the mark), so runs whose lookahead overlaps (a
    schedule that fires late or early, a lookahead longer than the interval) never read or send the same
    transition twice; it ends `lookahead` after the run started. Cost: one index read and one message per
    transition, plus one mark read and write per run.
    """

    def __init__(self, store: HandoffStore, sender: DelayedSender, clock: Clock, lookahead: timedelta) -> None:
        if lookahead > timedelta(seconds=MAX_DELAY_SECONDS):
            raise ValueError(f"the lookahead can be at most {MAX_DELAY_SECONDS} s (SQS's longest delay)")
        self._store = store
        self._sender = sender
        self._clock = clock
        self.lookahead = lookahead

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """(after, until]: the due instants this run hands off."""
        until = now + self.lookahead
        through = self._store.scheduled_through()
        after = now if through is None else min(max(now, through), until)
        return after, until

    def hand_off_shard(
        self, shard: int, after: datetime, until: datetime, time_left: Callable[[], bool]
    ) -> tuple[int, bool]:
        """Send the shard's transitions due in (after, until]; returns (sent, finished)."""
        sent = 0
        start: dict[str, Any] | None = None
        while time_left():
            page = self._store.due_between(shard, after, until, start)
            sent += self.hand_off(page.items)
            start = page.next_key
            if not start:
                return sent, True
        return sent, False

    def hand_off(self, profiles: Sequence[Profile]) -> int:
        """Send each profile's transition with a delay that ends at its instant; returns how many were sent."""
        now = self._clock.now()
        messages = [
            (
                DueTransition(
                    shop=profile.shop,
                    profile_key=profile.key,
                    due_at=profile.next_transition_at,
                    version=profile.version,
                ).model_dump_json(),
                delay_seconds(profile.next_transition_at, now),
            )
            for profile in profiles
            if profile.next_transition_at is not None
        ]
        if messages:
            self._sender.send_delayed(messages)
        return len(messages)

    def hand_off_written(self, profile: Profile, before: Profile | None) -> bool:
        """After a write: send the profile now when its next transition falls within the lookahead from now.

        A sweep that already ran may have handed that window off before this write set the instant, so the
        next hand-off to see it would be the plain sweep's, up to one interval late. An instant later than the
        lookahead is left to the sweeps (the one whose window covers it runs after this write). An unchanged
        instant is not sent again: the write that set it, or a sweep, handed it off already (and the consumer
        checks only that the profile is due). At most one message per write; a duplicate is a no-op.
        """
        due = profile.next_transition_at
        if due is None or (before is not None and before.next_transition_at == due):
            return False
        if due > self._clock.now() + self.lookahead:
            return False
        return self.hand_off([profile]) == 1

    def finished(self, until: datetime) -> None:
        """Every transition due up to `until` has been handed off."""
        self._store.record_scheduled_through(until)


class TransitionOutcome(StrEnum):
    APPLIED = "applied"
    """Re-evaluated at its instant and written (its change, if membership changed, enqueued)."""
    NOT_DUE = "not_due"
    """An event (or the sweep) moved the profile's next transition since it was scheduled: nothing to do."""
    GONE = "gone"
    """The profile no longer exists."""
    RESCHEDULED = "rescheduled"
    """The message came too early (a lookahead longer than SQS's delay): sent again for the rest."""


@dataclass(frozen=True)
class TransitionResult:
    outcome: TransitionOutcome
    lateness_ms: float | None = None
    """From the exact instant to the re-evaluated profile's write and enqueue (APPLIED only)."""
    entered: tuple[str, ...] = ()
    exited: tuple[str, ...] = ()


class ExactTransitions:
    """Consumes DueTransition messages: at the instant, re-evaluate under the usual version condition."""

    def __init__(
        self,
        store: ProfileLoader,
        sweep: StalenessSweep,
        sender: DelayedSender,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: timedelta = timedelta(seconds=2),
    ) -> None:
        self._store = store
        self._sweep = sweep
        self._sender = sender
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_wait

    def apply(self, due: DueTransition) -> TransitionResult:
        now = self._clock.now()
        if due.due_at > now:
            early = due.due_at - now
            if early > self._max_wait:
                self._sender.send_delayed([(due.model_dump_json(), delay_seconds(due.due_at, now))])
                return TransitionResult(TransitionOutcome.RESCHEDULED)
            self._sleep(early.total_seconds())
            now = max(self._clock.now(), due.due_at)
        profile = self._store.load(due.shop, due.profile_key)
        if profile is None:
            return TransitionResult(TransitionOutcome.GONE)
        if profile.next_transition_at is None or profile.next_transition_at > now:
            logger.debug(
                "Transition moved since it was scheduled",
                extra={"scheduled_version": due.version, "version": profile.version},
            )
            return TransitionResult(TransitionOutcome.NOT_DUE)
        report = self._sweep.sweep_profile(profile, now)
        lateness = (self._clock.now() - due.due_at).total_seconds() * 1000
        return TransitionResult(
            TransitionOutcome.APPLIED,
            lateness_ms=max(0.0, lateness),
            entered=tuple(sorted(report.entered)),
            exited=tuple(sorted(report.exited)),
        )
