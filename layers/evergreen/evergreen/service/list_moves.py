"""Move segments to other Klaviyo lists: the sweep finds their members and enqueues list-move messages.

The lists were last filled for one mapping (segment -> Klaviyo list id), recorded beside the definitions hash.
When the deployed definitions map a segment elsewhere, a scheduled sweep runs a list move: a parallel Scan of
the moved segments' members (`contains(membership, segment)`), enqueued on the segment-changes queue as
`ListMove` messages of up to LIST_MOVE_CHUNK members per shop and segment. SegmentSync applies them (fill the
new list, empty the old one) with its rate limits, retries and dead-lettering. No profile is re-evaluated or
written. Resumable like a full sweep: a move that runs out of time saves each scan segment's cursor, and the
new mapping is recorded only once every member was enqueued.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from evergreen.clock import Clock
from evergreen.domain.changes import LIST_MOVE_CHUNK, ListMember, ListMove
from evergreen.domain.list_moves import SegmentMove, plan_moves
from evergreen.domain.profile import Profile
from evergreen.segments import Definitions
from evergreen.service.lanes import Lane, open_lanes, run_lanes, walk
from evergreen.service.ports import ListMoveProgress, PageLike

logger = Logger(child=True)


class ListMoveStore(Protocol):
    def filled_list_ids(self) -> dict[str, str] | None: ...
    def record_filled_list_ids(self, list_ids: Mapping[str, str]) -> None: ...
    def progress(self) -> ListMoveProgress | None: ...
    def save_progress(self, progress: ListMoveProgress) -> None: ...
    def finish(self, list_ids: Mapping[str, str]) -> None: ...


class MemberScan(Protocol):
    def scan(
        self, segment: int, total_segments: int, start: dict[str, Any] | None = None, members_of: Collection[str] = ()
    ) -> PageLike[Profile]: ...
    def position_after(self, profile: Profile) -> dict[str, Any]: ...


class ListMovePublisher(Protocol):
    def publish_list_moves(self, moves: Sequence[ListMove]) -> None: ...


@dataclass
class ListMoveReport:
    """What one run of a list move did (a dry run: what it would do)."""

    moves: dict[str, SegmentMove]
    dry_run: bool
    members: Counter[str] = field(default_factory=Counter)
    """Members found per moved segment in this run (a resumed move counts only what this run read)."""
    enqueued: int = 0
    """List-move messages sent to the segment-changes queue."""
    complete: bool = True
    """Every member was enqueued: the new mapping is recorded."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "segments": {
                segment: {**move.as_dict(), "members": self.members[segment]}
                for segment, move in sorted(self.moves.items())
            },
            "members": sum(self.members.values()),
            "enqueued": self.enqueued,
            "complete": self.complete,
        }


def moves_to(
    deployed: Mapping[str, str], segments: Collection[str], filled: Mapping[str, str], progress: ListMoveProgress | None
) -> dict[str, SegmentMove]:
    """The moves that bring the lists from `filled` to `deployed`: an unfinished move's own if it fills for
    `deployed`, else a new plan that also empties what a superseded unfinished move began with."""
    if progress is not None and progress.target == deployed:
        return progress.moves
    return plan_moves(filled, deployed, segments, progress.moves if progress is not None else None)


class ListMover:
    """Fills the new Klaviyo list of every moved segment and empties the old one, through the queue."""

    def __init__(
        self,
        store: ListMoveStore,
        profiles: MemberScan,
        publisher: ListMovePublisher,
        definitions: Definitions,
        clock: Clock,
        scan_segments: int = 4,
        workers: int = 4,
    ) -> None:
        self._store = store
        self._profiles = profiles
        self._publisher = publisher
        self._definitions = definitions
        self._clock = clock
        self._scan_segments = scan_segments
        self._workers = workers

    def run(self, dry_run: bool, time_left: Callable[[], bool] = lambda: True) -> ListMoveReport | None:
        """Move what differs from the lists last filled; None when nothing does. A dry run only counts members."""
        deployed = self._definitions.klaviyo_list_ids
        filled = self._store.filled_list_ids()
        if filled is None:  # a new table, or the first sweep since list moves exist: the lists are as deployed
            if not dry_run:
                self._store.record_filled_list_ids(deployed)
            return None
        progress = self._store.progress()
        resumed = progress is not None and progress.target == deployed
        moves = moves_to(deployed, self._definitions.names, filled, progress)
        if not moves:
            if not dry_run and (progress is not None or filled != deployed):
                self._store.finish(deployed)  # e.g. a deleted segment's list: nothing to find, nothing to move
            return None
        report = ListMoveReport(moves, dry_run)
        cursors = progress.cursors if progress is not None and resumed and not dry_run else {}

        def move_lane(lane: Lane) -> tuple[Counter[str], int, Lane]:
            return self._move_lane(lane, moves, dry_run, time_left)

        finished = run_lanes(open_lanes(self._scan_segments, cursors), move_lane, self._workers)
        for found, enqueued, lane in finished:
            report.members.update(found)
            report.enqueued += enqueued
            report.complete = report.complete and lane.done
        if dry_run:
            return report
        if report.complete:
            self._store.finish(deployed)
        else:
            stopped = {lane.number: lane.cursor for _, _, lane in finished}
            self._store.save_progress(ListMoveProgress(dict(deployed), moves, {**cursors, **stopped}))
        logger.info("Klaviyo list move", extra={"list_move": report.as_dict()})
        return report

    def _move_lane(
        self, lane: Lane, moves: Mapping[str, SegmentMove], dry_run: bool, time_left: Callable[[], bool]
    ) -> tuple[Counter[str], int, Lane]:
        """Walk one scan segment; returns members found per segment, messages sent and where it stopped.

        Members wait in chunks per (shop, segment); what waits is sent before the lane returns, so the cursor
        it returns never skips an unsent member. If sending fails, the lane keeps its old cursor (resending
        is harmless: list membership is a set).
        """
        found: Counter[str] = Counter()
        waiting: dict[tuple[str, str], list[ListMember]] = {}
        sent = 0

        def send(chunks: Sequence[tuple[str, str]]) -> None:
            nonlocal sent
            messages = [
                ListMove(
                    shop=shop,
                    segment=segment,
                    from_lists=list(moves[segment].from_lists),
                    to_list=moves[segment].to_list,
                    members=waiting.pop((shop, segment)),
                    requested_at=self._clock.now(),
                )
                for shop, segment in chunks
            ]
            if messages:
                self._publisher.publish_list_moves(messages)
                sent += len(messages)

        def read_page(start: dict[str, Any] | None) -> PageLike[Profile]:
            return self._profiles.scan(lane.number, self._scan_segments, start, members_of=tuple(moves))

        def visit(profile: Profile) -> None:
            for segment in sorted(moves.keys() & profile.membership.keys()):
                found[segment] += 1
                if dry_run:
                    continue
                members = waiting.setdefault((profile.shop, segment), [])
                members.append(ListMember(profile_key=profile.key, klaviyo_profile_id=profile.klaviyo_profile_id))
                if len(members) >= LIST_MOVE_CHUNK:
                    send([(profile.shop, segment)])

        try:
            stopped = walk(lane, read_page, visit, time_left, self._profiles.position_after)
            send(list(waiting))
        except Exception:
            logger.exception("List move stopped; the next sweep resumes it", extra={"scan_segment": lane.number})
            return found, sent, lane
        return found, sent, stopped
