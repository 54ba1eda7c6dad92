"""The small interfaces the use cases need from storage and messaging, and the types they exchange."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict

from evergreen.domain.changes import ProfileErasure, SegmentChange
from evergreen.domain.erasure import ErasureGuard, Tombstone
from evergreen.domain.events import EngagementRecorded
from evergreen.domain.list_moves import SegmentMove
from evergreen.domain.orders import OrderState
from evergreen.domain.profile import Profile
from evergreen.domain.segment_counts import SyncedSnapshot


class VersionConflict(Exception):
    """Another writer changed the profile (or the order) since it was read."""


@dataclass(frozen=True)
class OrderItem:
    """One order as stored beside the profiles: its owner (None while only refunds are parked) and state.

    `version` is the stored version (0: not stored); writes are conditioned on it.
    """

    shop: str
    order_id: str
    owner: str | None
    state: OrderState
    version: int = 0


@dataclass(frozen=True)
class Snapshot:
    """What one consistent batch read returns for a write."""

    profile: Profile | None
    order: OrderItem | None = None
    guest: Profile | None = None
    erased: Mapping[Tombstone, datetime] = field(default_factory=dict)
    """The tombstones asked for that exist, with when each was written."""
    seen: bool = False
    """Whether the delivery was already applied (its note is stored)."""


class PageLike[T](Protocol):
    @property
    def items(self) -> list[T]: ...
    @property
    def next_key(self) -> dict[str, Any] | None: ...


class ProfileStore(Protocol):
    def load(self, shop: str, profile_key: str) -> Profile | None: ...
    def load_for_write(
        self,
        shop: str,
        profile_key: str,
        order_id: str | None = None,
        guest_key: str | None = None,
        delivery_id: str | None = None,
        tombstones: Sequence[Tombstone] = (),
    ) -> Snapshot:
        """The profile, the order item, the guest profile, whether the delivery was seen and these tombstones, in
        one consistent read."""
        ...

    def remember_delivery(self, shop: str, delivery_id: str, now: datetime) -> None:
        """Note that a delivery was applied (kept for days, beyond the senders' retries)."""
        ...

    def erased(self, shop: str, tombstones: Sequence[Tombstone]) -> dict[Tombstone, datetime]:
        """Which of these tombstones exist, and when each was written (one consistent read)."""
        ...

    def record_erasure(self, shop: str, tombstones: Sequence[Tombstone], at: datetime) -> None:
        """Write tombstones (idempotent): from now on, writes whose guard names them fail."""
        ...

    def load_order(self, shop: str, order_id: str) -> OrderItem | None: ...
    def orders_of(self, shop: str, profile_key: str) -> list[OrderItem]:
        """Every order item owned by the profile, read consistently (the aggregates' rebuild)."""
        ...

    def order_ids_of(self, shop: str, profile_key: str) -> list[str]:
        """The ids of the orders the profile owns, from the `by_owner` index (eventually consistent)."""
        ...

    def park_refund(self, item: OrderItem, now: datetime, guard: ErasureGuard | None = None) -> None:
        """Write an order item with no owner yet (refunds before their order); VersionConflict on a race or
        when a tombstone in `guard` stops it."""
        ...

    def customer_key_for_email(self, shop: str, email_normalized: str) -> str | None: ...
    def keys_with_email(self, shop: str, email_normalized: str) -> list[str]: ...
    def keys_in_shop(self, shop: str) -> Iterator[str]:
        """Every item of the shop but its tombstones."""
        ...

    def list_members_now(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], ListMemberNow]:
        """Each stored profile's segments, Klaviyo id and whether Klaviyo has it (consistent, 100 per read)."""
        ...

    def save(
        self,
        profile: Profile,
        expected_version: int,
        pending: SegmentChange | None,
        now: datetime,
        order: OrderItem | None = None,
        guest: Profile | None = None,
        guard: ErasureGuard | None = None,
    ) -> None:
        """Write the profile (and the order item, and delete a merged guest) atomically, or VersionConflict.

        A write that creates the profile, writes an order item or merges a guest also fails (VersionConflict)
        when a tombstone in `guard` stops it; an update of an existing profile is stopped by the redact
        deleting the profile after writing its tombstones (the version condition then fails).
        """
        ...

    def delete(self, shop: str, profile_keys: Sequence[str]) -> int: ...

    def erase_profiles(self, shop: str, profile_keys: Sequence[str]) -> int:
        """Delete these profiles and take them out of the per-segment totals they were counted in."""
        ...

    def touch_unsynced(self, change: SegmentChange, now: datetime) -> None: ...


class ChangePublisher(Protocol):
    def publish(self, changes: Sequence[SegmentChange]) -> None: ...
    def publish_erasure(self, erasure: ProfileErasure) -> None: ...


@dataclass(frozen=True)
class ListMemberNow:
    """A list-move member as the table has it when SegmentSync applies the move."""

    segments: frozenset[str]
    klaviyo_profile_id: str | None
    synced: bool
    """Whether any version of the profile reached Klaviyo (so Klaviyo knows its external id)."""


@dataclass(frozen=True)
class SweepRun:
    """When the sweep last ran to the end of its work (not a dry run, not limited to some segments)."""

    last_run_at: datetime
    complete: bool
    """Whether that run finished everything it found to do (False: it ran out of time)."""
    last_complete_at: datetime | None
    """The last run that finished everything (None: none yet)."""


@dataclass(frozen=True)
class ListMoveProgress:
    """An unfinished list move: the deployed mapping it fills for, its moves, and where each scan segment stopped."""

    target: dict[str, str]
    moves: dict[str, SegmentMove]
    cursors: dict[int, dict[str, Any] | str]


@dataclass(frozen=True)
class Received:
    """One received segment-change message: an SQS event record's fields, or a message the sync drained itself."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    """SQS's ApproximateReceiveCount: how many times the message was received, this time included."""


class SyncMark(NamedTuple):
    """A version that reached Klaviyo, and the Klaviyo profile id learned on the way (if any)."""

    shop: str
    profile_key: str
    version: int
    klaviyo_profile_id: str | None = None
    snapshot: SyncedSnapshot | None = None
    """What the version says about the profile's segments: the per-segment totals move by it (None: they don't)."""
    changed_at: datetime | None = None

    @classmethod
    def of(cls, change: SegmentChange, klaviyo_profile_id: str | None = None) -> SyncMark:
        """The mark of a change that reached Klaviyo, carrying what the segment totals need."""
        snapshot = SyncedSnapshot(frozenset(change.segments), change.net_spent or Decimal(0), change.engaged)
        return cls(change.shop, change.profile_key, change.version, klaviyo_profile_id, snapshot, change.changed_at)


class Redelivery(Protocol):
    """What becomes of segment-change messages that were not delivered to Klaviyo.

    Both return the message ids they could not handle (those follow the queue's own visibility and redrive).
    """

    def postpone(self, messages: Sequence[Received], delay_s: Mapping[str, int]) -> set[str]:
        """Make each message visible again after its own delay (message id -> seconds)."""
        ...

    def dead_letter(self, messages: Sequence[Received], reasons: Mapping[str, str]) -> set[str]:
        """Move poison to the dead-letter queue with its reason (message id -> reason)."""
        ...


class ChangeBacklog(Protocol):
    """The segment-changes queue as the sync reads it beyond its event-source batch (the drain)."""

    def receive(self, max_messages: int, visibility_s: int) -> list[Received]:
        """At most `max_messages` (1-10) messages visible now, without waiting, hidden for `visibility_s`."""
        ...

    def delete(self, messages: Sequence[Received]) -> set[str]:
        """Delete handled messages; returns the ids not deleted (they come back when their visibility ends)."""
        ...


class DataExporter(Protocol):
    def export(self, key: str, document: dict[str, Any]) -> str: ...


@dataclass(frozen=True)
class ParkedEngagement:
    """A Klaviyo engagement kept until its Klaviyo profile resolves (see storage/parked_engagements.py)."""

    delivery_id: str
    event: EngagementRecorded
    key: str = ""
    """Where the store keeps it (opaque to the use case; `release` takes it back)."""


# Per-shop accounts and secrets (read by storage/secrets.py). Tenant rule: a shop's own entry is the only one
# that applies to it; "*" applies only to shops with no entry of their own.
WILDCARD = "*"


def secrets_of(value: object) -> tuple[str, ...]:
    """The non-empty secrets in a string or a list of strings, in order, without repeats."""
    listed = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return tuple(dict.fromkeys(item for item in listed if isinstance(item, str) and item))


def entry_for[T](entries: Mapping[str, T], shop: str) -> T | None:
    """The shop's own entry, else the wildcard's: "*" never applies to a shop that has an entry of its own."""
    if shop in entries:
        return entries[shop]
    return entries.get(WILDCARD)


class KlaviyoAccount(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    api_key: str | None = None
    webhook_secret: str | list[str] | None = None
    previous_webhook_secret: str | None = None
    account_id: str | None = None

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """Every secret that verifies this account's deliveries: current first, then the one being rotated out."""
        return secrets_of([*secrets_of(self.webhook_secret), *secrets_of(self.previous_webhook_secret)])
