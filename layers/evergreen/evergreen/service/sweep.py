"""The staleness sweep: re-evaluate only the profiles whose next transition is due."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from evergreen.clock import Clock
from evergreen.domain.changes import SegmentChange
from evergreen.domain.profile import Profile
from evergreen.segments import Definitions
from evergreen.service.lanes import Cursor, Lane, open_lanes, run_lanes, walk
from evergreen.service.list_moves import ListMover, ListMoveReport
from evergreen.service.membership import reevaluate
from evergreen.service.ports import ChangePublisher, PageLike, VersionConflict
from evergreen.service.profile_writer import mark_undelivered

logger = Logger(child=True)

FANOUT_LEASE = timedelta(minutes=20)
"""How long a started full re-evaluation is left to its invocations before the scheduled run starts the groups
still unfinished again: longer than one invocation (Lambda's 15-minute limit)."""


class SweepRequest(BaseModel):
    """What the schedule or an operator asks for. The scheduled event carries none of these fields."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    dry_run: bool = False
    segments: list[str] | None = Field(default=None, min_length=1)
    full: bool = False
    group: int | None = Field(default=None, ge=0)
    """One group of a fanned-out full re-evaluation's scan segments (an invocation the scheduled run started)."""


class SweepStore(Protocol):
    def load(self, shop: str, profile_key: str) -> Profile | None: ...
    def due(self, shard: int, until: datetime, start: dict[str, Any] | None = None) -> PageLike[Profile]: ...
    def unsynced(
        self, shard: int, since_before: datetime, start: dict[str, Any] | None = None
    ) -> PageLike[SegmentChange]: ...
    def scan(self, segment: int, total_segments: int, start: dict[str, Any] | None = None) -> PageLike[Profile]: ...
    def save(self, profile: Profile, expected_version: int, pending: SegmentChange | None, now: datetime) -> None: ...
    def touch_unsynced(self, change: SegmentChange, now: datetime) -> None: ...
    def swept_definitions_hash(self) -> str | None: ...
    def record_swept_definitions_hash(self, definitions_hash: str) -> None: ...
    def position_after(self, profile: Profile) -> dict[str, Any]: ...
    def full_sweep_cursors(self, definitions_hash: str) -> dict[int, Cursor]: ...
    def save_full_sweep_cursors(self, definitions_hash: str, cursors: dict[int, Cursor]) -> None: ...
    def finish_full_sweep(self, definitions_hash: str) -> None: ...
    def full_sweep_dispatched_at(self, definitions_hash: str) -> datetime | None: ...
    def record_full_sweep_dispatch(self, definitions_hash: str, at: datetime) -> None: ...
    def record_sweep_run(self, finished_at: datetime, complete: bool) -> None: ...


class FullSweepFanout(Protocol):
    """Parallel invocations of the sweep, each running `SweepRequest(full=True, group=n)` (storage/sweep_fanout.py)."""

    def dispatch(self, groups: Sequence[int]) -> None: ...


class Handoff(Protocol):
    """The exact-instant path, as the sweep sees it (service/transitions.py's TransitionScheduler)."""

    def window(self, now: datetime) -> tuple[datetime, datetime]: ...
    def hand_off_shard(
        self, shard: int, after: datetime, until: datetime, time_left: Callable[[], bool]
    ) -> tuple[int, bool]: ...
    def finished(self, until: datetime) -> None: ...


@dataclass
class SweepReport:
    mode: str
    dry_run: bool
    segments: list[str] | None
    due: int = 0
    read: int = 0
    evaluated: int = 0
    written: int = 0
    conflicts: int = 0
    entered: Counter[str] = field(default_factory=Counter)
    exited: Counter[str] = field(default_factory=Counter)
    enqueued: int = 0
    repaired: int = 0
    scheduled: int = 0
    """Transitions due before the next run, handed to the transitions queue for their exact instant."""
    fanned_out: int = 0
    """Invocations of a full re-evaluation this run started (definitions changed, the due sweep went on)."""
    oldest_overdue_seconds: float = 0.0
    complete: bool = True
    list_move: ListMoveReport | None = None
    """A move of segments to other Klaviyo lists, when the deployed lists differ from the ones last filled."""
    duration_ms: float = 0.0

    def absorb(self, lane: SweepReport) -> None:
        """Add one lane's counts (lanes run in parallel, each with its own report)."""
        self.due += lane.due
        self.read += lane.read
        self.evaluated += lane.evaluated
        self.written += lane.written
        self.conflicts += lane.conflicts
        self.entered.update(lane.entered)
        self.exited.update(lane.exited)
        self.enqueued += lane.enqueued
        self.oldest_overdue_seconds = max(self.oldest_overdue_seconds, lane.oldest_overdue_seconds)
        self.complete = self.complete and lane.complete

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "dry_run": self.dry_run,
            "segments": self.segments,
            "due": self.due,
            "read": self.read,
            "evaluated": self.evaluated,
            "written": self.written,
            "conflicts": self.conflicts,
            "entered": dict(sorted(self.entered.items())),
            "exited": dict(sorted(self.exited.items())),
            "enqueued": self.enqueued,
            "repaired": self.repaired,
            "scheduled": self.scheduled,
            "fanned_out": self.fanned_out,
            "oldest_overdue_seconds": round(self.oldest_overdue_seconds, 3),
            "complete": self.complete,
            "list_move": self.list_move.as_dict() if self.list_move is not None else None,
            "duration_ms": round(self.duration_ms, 1),
        }


class StalenessSweep:
    """Re-evaluates due profiles (or all, in full mode), writes with the version condition, enqueues changes."""

    def __init__(
        self,
        store: SweepStore,
        publisher: ChangePublisher,
        definitions: Definitions,
        clock: Clock,
        shards: int,
        sync_grace: timedelta,
        scan_segments: int = 4,
        workers: int = 4,
        handoff: Handoff | None = None,
        list_mover: ListMover | None = None,
        fanout: FullSweepFanout | None = None,
        fanout_groups: int = 16,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._definitions = definitions
        self._clock = clock
        self._shards = shards
        self._grace = sync_grace
        self._workers = workers
        self._handoff = handoff
        self._list_mover = list_mover
        self._fanout = fanout
        self._groups = fanout_groups
        self._scan_segments = fanout_groups * workers if fanout is not None else scan_segments

    def run(self, request: SweepRequest, time_left: Callable[[], bool] = lambda: True) -> SweepReport:
        """Sweep until done or until `time_left()` says stop; the next run continues where work remains.

        Work is split in lanes (the due index's shards, or the parallel Scan's segments) that run on
        `workers` threads. A due lane resumes by itself (what is still due stays due, oldest first); a full
        sweep that runs out of time saves each segment's cursor and the next full run resumes from it.
        A scheduled run with time left, and no full re-evaluation pending, then moves segments whose Klaviyo
        list changed (service/list_moves.py); a dry run reports that move and changes nothing.
        """
        started = time.perf_counter()
        now = self._clock.now()
        only = frozenset(request.segments) if request.segments else None
        changed = self._definitions_changed(request)
        fans_out = changed and self._fanout is not None
        full = request.full or request.group is not None or (changed and not fans_out)
        report = SweepReport("full" if full else "due", request.dry_run, request.segments)
        tracks_progress = full and only is None and not request.dry_run
        if full:
            cursors = self._store.full_sweep_cursors(self._definitions.hash) if tracks_progress else {}
            lanes = [lane for lane in open_lanes(self._scan_segments, cursors) if self._in_group(lane, request)]
        else:
            lanes = open_lanes(self._shards, {})
        if fans_out:
            report.fanned_out = self._fan_out(now)

        def sweep_lane(lane: Lane) -> tuple[SweepReport, Lane]:
            return self._sweep_lane(lane, full, now, only, request, time_left)

        finished = run_lanes(lanes, sweep_lane, self._workers)
        for lane_report, _ in finished:
            report.absorb(lane_report)
        if tracks_progress and request.group is not None:
            self._finish_group(request.group, {lane.number: lane.cursor for _, lane in finished}, report.complete)
        elif tracks_progress:
            if report.complete:
                self._store.finish_full_sweep(self._definitions.hash)
            else:
                self._store.save_full_sweep_cursors(
                    self._definitions.hash, {lane.number: lane.cursor for _, lane in finished}
                )
        if not (full or request.dry_run or only) and report.complete:
            report.scheduled = self._hand_off(now, time_left)
        if not request.dry_run and report.complete:
            report.repaired = self._repair_outbox(now, time_left)
        if self._list_mover is not None and not (full or only or fans_out) and report.complete:
            report.list_move = self._list_mover.run(request.dry_run, time_left)
        if not (request.dry_run or only):
            self._record_run(report)
        report.duration_ms = (time.perf_counter() - started) * 1000
        return report

    def _in_group(self, lane: Lane, request: SweepRequest) -> bool:
        """Whether a fan-out invocation for `request.group` walks this scan segment (every lane without a group)."""
        return request.group is None or lane.number // self._workers == request.group

    def _fan_out(self, now: datetime) -> int:
        """Start the full re-evaluation's invocations, one per group with segments left, unless a start within
        `FANOUT_LEASE` is still running (each invocation that runs out of time starts its own successor)."""
        assert self._fanout is not None
        definitions = self._definitions.hash
        dispatched = self._store.full_sweep_dispatched_at(definitions)
        if dispatched is not None and now - dispatched < FANOUT_LEASE:
            return 0
        cursors = self._store.full_sweep_cursors(definitions)
        groups = sorted({lane.number // self._workers for lane in open_lanes(self._scan_segments, cursors)})
        if not groups:  # the last groups ended together, each before seeing the other's cursors
            self._store.finish_full_sweep(definitions)
            return 0
        self._store.record_full_sweep_dispatch(definitions, now)
        try:
            self._fanout.dispatch(groups)
        except Exception:
            logger.exception("Could not start the full re-evaluation; the next run starts it once the lease ends")
            return 0
        return len(groups)

    def _finish_group(self, group: int, cursors: dict[int, Cursor], complete: bool) -> None:
        """Save a group's cursors; start its successor when it ran out of time, or finish the whole re-evaluation
        when it was the last group to end."""
        definitions = self._definitions.hash
        self._store.save_full_sweep_cursors(definitions, cursors)
        if not complete:
            self._store.record_full_sweep_dispatch(definitions, self._clock.now())
            if self._fanout is not None:
                self._fanout.dispatch([group])
            return
        if not open_lanes(self._scan_segments, self._store.full_sweep_cursors(definitions)):
            self._store.finish_full_sweep(definitions)

    def _record_run(self, report: SweepReport) -> None:
        """When this run finished and whether it did all its work: what `evergreen doctor` checks the schedule by.

        A run limited to some segments or a dry run is not recorded (it leaves the others' work undone)."""
        complete = report.complete and (report.list_move is None or report.list_move.complete)
        try:
            self._store.record_sweep_run(self._clock.now(), complete)
        except Exception:
            logger.exception("Could not record the sweep's run; the next run records its own")

    def _sweep_lane(
        self,
        lane: Lane,
        full: bool,
        now: datetime,
        only: frozenset[str] | None,
        request: SweepRequest,
        time_left: Callable[[], bool],
    ) -> tuple[SweepReport, Lane]:
        """Page through one shard or scan segment; returns its counts and where it stopped."""
        report = SweepReport("full" if full else "due", request.dry_run, request.segments)

        def read_page(start: dict[str, Any] | None) -> PageLike[Profile]:
            if full:
                return self._store.scan(lane.number, self._scan_segments, start)
            return self._store.due(lane.number, now, start)

        def visit(profile: Profile) -> None:
            report.read += 1
            if not full:
                report.due += 1
                if profile.next_transition_at is not None:
                    overdue = (now - profile.next_transition_at).total_seconds()
                    report.oldest_overdue_seconds = max(report.oldest_overdue_seconds, overdue)
            self._sweep_one(profile, now, only, request, report, full)

        stopped = walk(lane, read_page, visit, time_left, self._store.position_after)
        report.complete = stopped.done
        return report, stopped

    def sweep_profile(self, profile: Profile, now: datetime) -> SweepReport:
        """Re-evaluate one due profile at `now` and write it under the version condition (the exact-instant path)."""
        report = SweepReport("due", dry_run=False, segments=None)
        self._sweep_one(profile, now, None, SweepRequest(), report, full=False)
        return report

    def _hand_off(self, now: datetime, time_left: Callable[[], bool]) -> int:
        """Hand what falls due before the next run to the exact-instant path; the mark moves only when all shards
        were handed off (otherwise the next run reads the window again)."""
        if self._handoff is None:
            return 0
        handoff = self._handoff
        after, until = handoff.window(now)
        if after >= until:
            return 0

        def hand_off_shard(shard: int) -> tuple[int, bool]:
            return handoff.hand_off_shard(shard, after, until, time_left)

        try:
            with ThreadPoolExecutor(max_workers=self._workers) as pool:
                results = list(pool.map(hand_off_shard, range(self._shards)))
        except Exception:
            logger.exception("Hand-off to the transitions queue failed; the next sweeps apply these transitions")
            return 0
        if all(finished for _, finished in results):
            handoff.finished(until)
        return sum(sent for sent, _ in results)

    def _definitions_changed(self, request: SweepRequest) -> bool:
        """A scheduled run after a definitions change becomes a full re-evaluation, until one completes."""
        if request.full or request.dry_run or request.segments:
            return False
        swept = self._store.swept_definitions_hash()
        if swept is None:  # a new table: every profile is written under the definitions deployed with it
            self._store.record_swept_definitions_hash(self._definitions.hash)
            return False
        return swept != self._definitions.hash

    def _sweep_one(
        self,
        profile: Profile,
        now: datetime,
        only: frozenset[str] | None,
        request: SweepRequest,
        report: SweepReport,
        full: bool,
    ) -> None:
        current: Profile | None = profile
        while current is not None:
            result = reevaluate(current, self._definitions, now, current.version + 1, only)
            report.evaluated += 1
            if _settled(current, result.profile) and result.change is None:
                return
            change = result.change
            if change is not None and _is_due(current, now):
                change = change.model_copy(update={"transition_at": current.next_transition_at})
            if request.dry_run:
                report.entered.update(result.entered)
                report.exited.update(result.exited)
                return
            try:
                self._store.save(result.profile, current.version, change, now)
            except VersionConflict:
                report.conflicts += 1
                current = self._store.load(current.shop, current.key)
                if current is not None and not (full or _is_due(current, now)):
                    return
                continue
            report.written += 1
            report.entered.update(result.entered)
            report.exited.update(result.exited)
            if change is not None and self._publish([change]):
                report.enqueued += 1
            return

    def _repair_outbox(self, now: datetime, time_left: Callable[[], bool]) -> int:
        """Re-send changes still unsynced after the grace period (the table write landed, the send did not)."""
        repaired = 0
        for shard in range(self._shards):
            start: dict[str, Any] | None = None
            while time_left():
                page = self._store.unsynced(shard, now - self._grace, start)
                if page.items and self._publish(page.items):
                    for change in page.items:
                        self._store.touch_unsynced(change, now)
                    repaired += len(page.items)
                start = page.next_key
                if not start:
                    break
        return repaired

    def _publish(self, changes: Sequence[SegmentChange]) -> bool:
        try:
            self._publisher.publish(changes)
        except Exception:
            logger.exception("Enqueue failed; the outbox keeps the change")
            mark_undelivered(self._store, changes)
            return False
        return True


def _settled(before: Profile, after: Profile) -> bool:
    """Nothing worth a write: same transition time and definitions hash (membership is checked apart)."""
    return before.next_transition_at == after.next_transition_at and before.definitions_hash == after.definitions_hash


def _is_due(profile: Profile, now: datetime) -> bool:
    return profile.next_transition_at is not None and profile.next_transition_at <= now
