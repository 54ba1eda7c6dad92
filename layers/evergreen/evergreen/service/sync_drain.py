"""One sync invocation: its event-source batch, the backlog it drains when that batch is full, and redelivery.

The event source hands over small batches with no batching window, so a trickle reaches Klaviyo at once. A full
batch is the sign of a backlog: then the invocation also receives what is already waiting on the queue (short
polls, ten at a time) until it holds `DrainLimits.max_changes` changes or `max_bytes` of bodies, or until the
time left would not cover handling what it holds. Everything goes to `SegmentSync.handle` as one batch, so a
burst of thousands of changes costs one bulk profile import job per invocation instead of one per ten.

Afterwards every failed message, drained or not, is postponed by its own back-off or dead-lettered with its
reason. Event-source records are answered through the partial batch response (Lambda deletes the others);
drained messages that succeeded are deleted here. A crash leaves drained messages to come back when their
visibility ends (the time left plus a margin), where replays Klaviyo already has are dropped by version.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger

from evergreen.service.ports import ChangeBacklog, Received, Redelivery
from evergreen.service.sync import SegmentSync, SyncReport, plan_redelivery, read_queue_message

logger = Logger(child=True)

RECEIVE_MAX = 10
"""SQS's most messages per ReceiveMessage."""


@dataclass(frozen=True)
class DrainLimits:
    """When an invocation drains the backlog, and how much it takes."""

    full_batch: int = 10
    """The event source's BatchSize: a batch this large means more is waiting (0 or less never drains)."""
    max_changes: int = 10_000
    """Most messages one invocation handles, its own batch included: a bulk profile import job's limit."""
    max_bytes: int = 6 * 1024 * 1024
    """Most message bytes it holds (the size of the largest batch the event source could hand over)."""
    safety_ms: int = 20_000
    """Time kept back from the function's timeout, beyond the handling time below."""
    handling_ms_per_change: float = 25.0
    """Handling time reserved for each message held (push, record, delete), so the batch finishes in time."""
    after_push_ms: float = 10.0
    """Time kept back per message for what follows the push (marks, deletes), when bulk jobs are followed."""
    visibility_margin_s: int = 30
    """A drained message is hidden for the time left plus this: if the invocation dies, it is back soon after."""


@dataclass
class DrainOutcome:
    """What one invocation did with its messages (for the handler's response, metrics and log)."""

    report: SyncReport
    received: int = 0
    """Records the event source handed over."""
    drained: int = 0
    """Messages the invocation received itself."""
    unreadable: int = 0
    dead_lettered: int = 0
    delays_s: dict[str, int] = field(default_factory=dict)
    """Postponed messages (message id -> seconds until their next try)."""
    retry: set[str] = field(default_factory=set)
    """Event-source message ids to report as failed (postponed, or poison that could not be dead-lettered)."""
    not_deleted: int = 0
    """Drained messages handled but not deleted; they return after their visibility and are dropped as stale."""


class DrainingSync:
    """Handles an event-source batch, draining the backlog into it when the batch is full."""

    def __init__(
        self,
        sync: SegmentSync,
        redelivery: Redelivery,
        backlog: ChangeBacklog | None,
        limits: DrainLimits,
        jitter: Callable[[], float],
    ) -> None:
        """`jitter` draws each postponed message's share of back-off jitter (0..RETRY_JITTER)."""
        self._sync = sync
        self._redelivery = redelivery
        self._backlog = backlog
        self._limits = limits
        self._jitter = jitter

    def run(self, records: Sequence[Received], remaining_ms: Callable[[], int]) -> DrainOutcome:
        """`records` is the event-source batch; `remaining_ms` the invocation's time left."""
        drained = self._drain(records, remaining_ms)
        messages = [*records, *drained]
        read = [(message, read_queue_message(message.body)) for message in messages]
        handled = [message for message, parsed in read if parsed is not None]
        unreadable = [message for message, parsed in read if parsed is None]
        for message in unreadable:
            logger.error("Unreadable queue message; dead-lettered", extra={"message_id": message.message_id})
        limits = self._limits

        def time_left_s() -> float:
            """Time bulk jobs may be followed: what is left, less the safety and what follows the push."""
            return (remaining_ms() - limits.safety_ms - len(messages) * limits.after_push_ms) / 1000

        report = self._sync.handle([parsed for _, parsed in read if parsed is not None], time_left_s=time_left_s)
        plan = plan_redelivery(report, [message.receive_count for message in handled], self._jitter)

        poison = [*unreadable, *(handled[i] for i in plan.poison)]
        reasons = {m.message_id: "unreadable" for m in unreadable} | {
            handled[i].message_id: reason for i, reason in plan.poison.items()
        }
        postponed = [handled[i] for i in plan.delays_s]
        delays = {handled[i].message_id: delay for i, delay in plan.delays_s.items()}
        failed = set(delays) | self._dead_letter(poison, reasons)
        try:
            self._redelivery.postpone(postponed, delays)
        except Exception:
            logger.exception("Could not postpone failed messages; they return after their visibility timeout")
        outcome = DrainOutcome(
            report,
            received=len(records),
            drained=len(drained),
            unreadable=len(unreadable),
            dead_lettered=len(poison),
            delays_s=delays,
            retry={record.message_id for record in records} & failed,
        )
        outcome.not_deleted = self._delete([m for m in drained if m.message_id not in failed])
        return outcome

    def _drain(self, records: Sequence[Received], remaining_ms: Callable[[], int]) -> list[Received]:
        limits = self._limits
        if self._backlog is None or limits.full_batch <= 0 or len(records) < limits.full_batch:
            return []
        held, size = len(records), sum(len(record.body.encode()) for record in records)
        drained: list[Received] = []
        while held < limits.max_changes and size < limits.max_bytes:
            wanted = min(RECEIVE_MAX, limits.max_changes - held)
            left_ms = remaining_ms()
            if left_ms - limits.safety_ms < (held + wanted) * limits.handling_ms_per_change:
                break
            got = self._backlog.receive(wanted, math.ceil(left_ms / 1000) + limits.visibility_margin_s)
            if not got:
                break
            drained += got
            held += len(got)
            size += sum(len(message.body.encode()) for message in got)
        return drained

    def _dead_letter(self, poison: list[Received], reasons: dict[str, str]) -> set[str]:
        """The ids of poison not moved to the DLQ (it stays failed and follows the queue's redrive policy)."""
        if not poison:
            return set()
        try:
            return self._redelivery.dead_letter(poison, reasons)
        except Exception:
            logger.exception("Could not dead-letter poison; left to the queue's redrive policy")
            return {message.message_id for message in poison}

    def _delete(self, done: list[Received]) -> int:
        if not done or self._backlog is None:
            return 0
        try:
            return len(self._backlog.delete(done))
        except Exception:
            logger.exception("Could not delete drained messages; they return and are dropped as already synced")
            return len(done)
