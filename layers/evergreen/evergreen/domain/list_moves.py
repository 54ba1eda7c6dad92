"""Moving a segment to another Klaviyo list: which lists to fill and empty, and what each member needs.

The lists were last filled for one mapping (segment -> Klaviyo list id, recorded by the sweep); the deployed
definitions name another. For each segment whose list differs, the move fills the new list with the segment's
current members and takes them out of the old one. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from evergreen.domain.changes import ListMove

ListMapping = Mapping[str, str]
"""Segment name -> Klaviyo list id."""


@dataclass(frozen=True)
class SegmentMove:
    """One segment's move: the lists to empty of its members, and the list to fill (None: only empty)."""

    from_lists: tuple[str, ...]
    to_list: str | None

    def as_dict(self) -> dict[str, object]:
        return {"from": list(self.from_lists), "to": self.to_list}


@dataclass(frozen=True)
class MemberListChange:
    """What one member of a list-move message needs in Klaviyo: the list to join, the lists to leave."""

    message: int
    """The index of its list-move message in the batch (failures are charged to the message)."""
    external_id: str
    klaviyo_profile_id: str | None
    join: str | None
    leave: tuple[str, ...]


def plan_moves(
    filled: ListMapping,
    deployed: ListMapping,
    segments: Iterable[str],
    unfinished: Mapping[str, SegmentMove] | None = None,
) -> dict[str, SegmentMove]:
    """The moves that bring the lists from `filled` to `deployed`, for the deployed `segments`.

    `unfinished` is a superseded move that did not complete (the mapping changed again meanwhile): the lists it
    had begun to fill or empty are emptied too, so a list id corrected twice leaves nothing behind. A segment no
    longer deployed is not moved (it has no members to find).
    """
    moves: dict[str, SegmentMove] = {}
    for segment in sorted(set(segments)):
        target = deployed.get(segment)
        earlier = {filled[segment]} if segment in filled else set()
        begun = unfinished.get(segment) if unfinished else None
        if begun is not None:
            earlier |= {*begun.from_lists, *([begun.to_list] if begun.to_list else [])}
        earlier.discard(target or "")
        if earlier or target != filled.get(segment):
            moves[segment] = SegmentMove(tuple(sorted(earlier)), target)
    return moves


def member_lists(
    move: ListMove, segments_now: Collection[str], deployed: ListMapping
) -> tuple[str | None, tuple[str, ...]]:
    """(list to join, lists to leave) for a member of `move` whose current segments are `segments_now`.

    It joins the new list only while it is still in the segment (one who left since the sweep read it is not
    added back), and it stays in an old list that another of its segments is deployed to.
    """
    kept = {deployed[segment] for segment in segments_now if segment in deployed}
    join = move.to_list if move.to_list is not None and move.segment in segments_now else None
    return join, tuple(list_id for list_id in move.from_lists if list_id not in kept)
