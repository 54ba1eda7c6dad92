"""Lanes: the due index's shards, or a parallel Scan's segments, each walked page by page and resumable.

The sweep (service/sweep.py) and the list move (service/list_moves.py) split their reads in lanes that run on
threads; a lane stops when the time budget runs out and says where, so the next run continues from there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from evergreen.domain.profile import Profile
from evergreen.service.ports import PageLike

Cursor = dict[str, Any] | str
FRESH = "fresh"
"""A lane that starts at the beginning."""
DONE = "done"
"""A lane (scan segment) a resumed run has already finished."""


@dataclass(frozen=True)
class Lane:
    number: int
    """The due shard, or the parallel Scan segment."""
    cursor: Cursor

    @property
    def done(self) -> bool:
        return self.cursor == DONE


def open_lanes(count: int, cursors: Mapping[int, Cursor]) -> list[Lane]:
    """Lanes 0..count-1 still to walk, each from its saved cursor (none saved: from the beginning)."""
    return [Lane(number, cursors.get(number, FRESH)) for number in range(count) if cursors.get(number, FRESH) != DONE]


def walk(
    lane: Lane,
    read_page: Callable[[dict[str, Any] | None], PageLike[Profile]],
    visit: Callable[[Profile], None],
    time_left: Callable[[], bool],
    position_after: Callable[[Profile], dict[str, Any]],
) -> Lane:
    """Visit the lane's profiles from its cursor until the end (cursor DONE) or until `time_left()` says stop
    (cursor: the position after the last profile visited)."""
    start = lane.cursor if isinstance(lane.cursor, dict) else None
    while True:
        page = read_page(start)
        resume: Cursor = start if start is not None else FRESH
        for profile in page.items:
            if not time_left():
                return Lane(lane.number, resume)
            visit(profile)
            resume = position_after(profile)
        start = page.next_key
        if not start:
            return Lane(lane.number, DONE)


def run_lanes[R](lanes: Sequence[Lane], work: Callable[[Lane], R], workers: int) -> list[R]:
    """`work` on every lane, `workers` at a time; results in lane order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(work, lanes))
