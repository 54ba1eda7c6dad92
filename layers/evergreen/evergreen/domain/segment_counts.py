"""How each segment is doing: what one profile's synced snapshot adds to its segments' running totals (pure).

Counts are kept as changes reach Klaviyo, never by scanning: when a profile's newest snapshot is marked synced,
its segments' totals move by the difference between that snapshot and the one synced before it. The storage
adapter applies the difference in the same transaction as the mark, so a version counts once or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

ENGAGED_WITHIN = timedelta(days=30)
"""A member counts as engaged when `last_engaged_at` (email open or click, SMS click) is this recent."""


def is_engaged(facts: Mapping[str, Any], now: datetime) -> bool:
    """Engaged as the report counts it: an open or click within `ENGAGED_WITHIN` of `now`."""
    last = facts.get("last_engaged_at")
    return last is not None and last > now - ENGAGED_WITHIN


@dataclass(frozen=True)
class SyncedSnapshot:
    """What the totals know of one profile: its segments, net spent and whether it was engaged, as synced."""

    segments: frozenset[str]
    net_spent: Decimal = Decimal(0)
    engaged: bool = False


def _share(snapshot: SyncedSnapshot | None, segment: str) -> SegmentTotals:
    if snapshot is None or segment not in snapshot.segments:
        return SegmentTotals()
    return SegmentTotals(1, snapshot.net_spent, int(snapshot.engaged))


def segment_deltas(old: SyncedSnapshot | None, new: SyncedSnapshot) -> dict[str, SegmentTotals]:
    """Per segment touched, the totals' change from `old` (None: never synced) to `new`; unchanged ones left out."""
    touched = new.segments | (old.segments if old else frozenset())
    deltas: dict[str, SegmentTotals] = {}
    for segment in sorted(touched):
        before, after = _share(old, segment), _share(new, segment)
        delta = SegmentTotals(
            after.members - before.members, after.net_spent - before.net_spent, after.engaged - before.engaged
        )
        if not delta.empty:
            deltas[segment] = delta
    return deltas


@dataclass(frozen=True)
class SegmentTotals:
    """One segment's running totals (members now, their net spent, how many were engaged when last synced), or
    what one profile's new snapshot changes in them."""

    members: int = 0
    net_spent: Decimal = Decimal(0)
    engaged: int = 0

    @property
    def empty(self) -> bool:
        return self.members == 0 and self.net_spent == 0 and self.engaged == 0

    @property
    def average_net_spent(self) -> Decimal | None:
        return (self.net_spent / self.members).quantize(Decimal("0.01")) if self.members else None

    @property
    def engaged_share(self) -> float | None:
        return self.engaged / self.members if self.members else None


@dataclass(frozen=True)
class SegmentDay:
    """Entries into and exits from one segment during one UTC day (counted when they reached Klaviyo)."""

    day: datetime
    entered: int = 0
    exited: int = 0
