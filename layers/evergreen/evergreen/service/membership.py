"""Re-evaluating a profile's segments and what changed (pure; where the domain and the segment engine meet)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from evergreen.domain.changes import SegmentChange
from evergreen.domain.profile import Profile
from evergreen.domain.segment_counts import is_engaged
from evergreen.segments import Definitions, evaluate


@dataclass(frozen=True)
class Reevaluation:
    profile: Profile
    """The profile with membership, next transition and definitions hash brought up to date."""
    entered: tuple[str, ...]
    exited: tuple[str, ...]
    change: SegmentChange | None
    """The message to enqueue, when membership changed."""

    @property
    def changed(self) -> bool:
        return self.change is not None


def snapshot_change(
    profile: Profile, version: int, now: datetime, facts: Mapping[str, Any] | None = None
) -> SegmentChange:
    """The profile's stored membership and facts as one change at `version`, entering and leaving nothing."""
    facts = profile.facts() if facts is None else facts
    return SegmentChange(
        shop=profile.shop,
        profile_key=profile.key,
        version=version,
        changed_at=now,
        segments=sorted(profile.membership),
        customer_id=profile.customer_id,
        email=profile.email,
        phone=profile.phone,
        first_name=profile.first_name,
        last_name=profile.last_name,
        klaviyo_profile_id=profile.klaviyo_profile_id,
        properties=profile.klaviyo_properties,
        net_spent=facts["net_spent"],
        engaged=is_engaged(facts, now),
    )


def reevaluate(
    profile: Profile,
    definitions: Definitions,
    now: datetime,
    version: int,
    only: frozenset[str] | None = None,
) -> Reevaluation:
    """Evaluate `profile` at `now` for writing as `version`.

    With `only`, membership changes outside those segments are left as they were, and the profile
    stays due at its old transition time so that a later unrestricted sweep applies them. A customer
    deleted in Shopify belongs to no segment and has no next transition.
    """
    facts = profile.facts()
    evaluation = evaluate(facts, definitions, now)
    properties = definitions.property_values(facts, now)
    current = set(profile.membership)
    segments = frozenset() if profile.deleted else evaluation.segments
    target = set(segments)
    if only is not None:
        target = (target & only) | (current - only)
    entered = tuple(sorted(target - current))
    exited = tuple(sorted(current - target))
    membership = {name: at for name, at in profile.membership.items() if name in target}
    membership.update({name: now for name in entered})
    next_transition_at = None if profile.deleted else evaluation.next_transition_at
    if only is not None and target != set(segments):
        next_transition_at = profile.next_transition_at or now
    updated = profile.model_copy(
        update={
            "membership": membership,
            "next_transition_at": next_transition_at,
            "definitions_hash": definitions.hash if only is None else profile.definitions_hash,
            "version": version,
            "klaviyo_properties": properties,
        }
    )
    change = None
    if entered or exited or properties != profile.klaviyo_properties:
        change = snapshot_change(updated, version, now, facts).model_copy(
            update={"entered": list(entered), "exited": list(exited)}
        )
    return Reevaluation(updated, entered, exited, change)
