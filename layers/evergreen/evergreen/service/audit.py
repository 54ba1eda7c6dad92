"""`evergreen audit`: compare what Klaviyo holds with the table, and mend drift through the normal sync path.

For each profile Klaviyo should know (synced at least once, no change in flight), Klaviyo must hold the profile,
its `evergreen_segments` property must be the profile's segments, and it must be in exactly the mapped lists of
those segments. A drifted profile is repaired by writing it again at its next version with a snapshot change
that reconciles every mapped list: the outbox and the sync function take it from there, as any change.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from evergreen.domain.changes import SegmentChange, external_id
from evergreen.domain.profile import Profile
from evergreen.service.membership import snapshot_change
from evergreen.service.ports import VersionConflict


@dataclass(frozen=True)
class StoredProfile:
    """A profile as the table holds it, with its sync state."""

    profile: Profile
    synced_version: int | None
    pending_version: int | None

    @property
    def in_flight(self) -> bool:
        """Never synced, or a newer change still on its way: Klaviyo may rightly differ for now."""
        return self.synced_version is None or self.pending_version is not None


class AuditProfiles(Protocol):
    def shop_profiles(self, shop: str) -> Iterable[StoredProfile]: ...


class Holdings(Protocol):
    def segments_of(self, external_ids: Sequence[str]) -> dict[str, Held]: ...
    def list_members(self, list_id: str) -> set[str]: ...


class RepairStore(Protocol):
    def save(self, profile: Profile, expected_version: int, pending: SegmentChange | None, now: datetime) -> None: ...


class Publisher(Protocol):
    def publish(self, changes: Sequence[SegmentChange]) -> None: ...


@dataclass(frozen=True)
class Drift:
    """One profile that Klaviyo holds otherwise than the table. Names segments and list ids only, never PII."""

    profile_key: str
    problems: tuple[str, ...]


@dataclass
class AuditReport:
    checked: int = 0
    in_flight: int = 0
    drift: list[Drift] = field(default_factory=list)
    repaired: int = 0

    @property
    def clean(self) -> bool:
        return not self.drift


type Held = tuple[str, list[str] | None]
"""Klaviyo's id for a profile and its `evergreen_segments` (None when unset)."""


def _problems(
    stored: Profile,
    held: Held | None,
    lists: Mapping[str, str],
    members: Mapping[str, set[str]],
) -> tuple[str, ...]:
    if held is None:
        return ("missing in Klaviyo",)
    klaviyo_id, segments = held
    expected = sorted(stored.membership)
    problems: list[str] = []
    if segments is None or sorted(segments) != expected:
        problems.append(f"evergreen_segments is {segments}, the table says {expected}")
    wanted = {list_id for segment, list_id in lists.items() if segment in stored.membership}
    for list_id in sorted(set(lists.values())):
        inside = klaviyo_id in members[list_id]
        if inside and list_id not in wanted:
            problems.append(f"in list {list_id}, the table says not in")
        elif not inside and list_id in wanted:
            problems.append(f"not in list {list_id}, the table says in")
    return tuple(problems)


class Audit:
    def __init__(
        self,
        profiles: AuditProfiles,
        holdings: Holdings,
        list_ids: Mapping[str, str],
        store: RepairStore,
        publisher: Publisher,
    ) -> None:
        self._profiles = profiles
        self._holdings = holdings
        self._list_ids = dict(list_ids)
        self._store = store
        self._publisher = publisher

    def run(
        self, shop: str, sample: int | None, now: datetime, repair: bool = False, seed: int | None = None
    ) -> AuditReport:
        """Audit every profile (`sample` None) or `sample` of them drawn at random; with `repair`, mend the drift."""
        report = AuditReport()
        candidates: list[StoredProfile] = []
        for stored in self._profiles.shop_profiles(shop):
            if stored.in_flight:
                report.in_flight += 1
            else:
                candidates.append(stored)
        if sample is not None and sample < len(candidates):
            candidates = random.Random(seed).sample(candidates, sample)
        report.checked = len(candidates)
        held = self._holdings.segments_of([external_id(shop, s.profile.key) for s in candidates])
        members = {list_id: self._holdings.list_members(list_id) for list_id in sorted(set(self._list_ids.values()))}
        drifted: list[tuple[StoredProfile, bool]] = []
        for stored in candidates:
            found = held.get(external_id(shop, stored.profile.key))
            problems = _problems(stored.profile, found, self._list_ids, members)
            if problems:
                report.drift.append(Drift(stored.profile.key, problems))
                drifted.append((stored, found is None))
        if repair:
            report.repaired = self._repair(drifted, now)
        return report

    def _repair(self, drifted: Sequence[tuple[StoredProfile, bool]], now: datetime) -> int:
        """Write each drifted profile at its next version with a reconciling snapshot, and queue it. A profile
        Klaviyo no longer has is sent by external id alone (the Klaviyo id the table remembers is gone)."""
        changes = []
        for stored, missing in drifted:
            profile = stored.profile.model_copy(update={"klaviyo_profile_id": None}) if missing else stored.profile
            version = profile.version + 1
            change = snapshot_change(profile, version, now).model_copy(update={"reconcile_lists": True})
            try:
                self._store.save(profile.model_copy(update={"version": version}), profile.version, change, now)
            except VersionConflict:
                continue  # it changed meanwhile: its own change is on its way to Klaviyo
            changes.append(change)
        self._publisher.publish(changes)
        return len(changes)
