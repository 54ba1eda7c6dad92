"""The message that carries a membership change from the table to Klaviyo."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from evergreen.domain.profile import Profile

UNDELIVERED_SINCE = datetime(1970, 1, 1, tzinfo=UTC)
"""The outbox date of a change whose send to the queue failed: older than any grace period, so the next
sweep's repair re-sends it at once instead of waiting SYNC_GRACE_SECONDS."""


class SegmentChange(BaseModel):
    """A full membership snapshot at one profile version (not a delta), so replays are harmless.

    `entered` and `exited` name the segments that changed at this version; they drive the
    "Entered segment" / "Exited segment" events, whose unique ids derive from `event_unique_id`.
    """

    model_config = ConfigDict(frozen=True)

    shop: str
    profile_key: str
    version: int
    changed_at: datetime
    segments: list[str]
    entered: list[str] = []
    exited: list[str] = []
    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    klaviyo_profile_id: str | None = None
    net_spent: Decimal | None = None
    """The profile's net spent at this version, for the segments' running totals."""
    engaged: bool = False
    """Whether the profile was engaged at this version (`segment_counts.is_engaged`), for the totals."""
    reconcile_lists: bool = False
    """Set every mapped list from this snapshot, not only those of `entered`/`exited` (an audit's repair)."""
    properties: dict[str, Any] = {}
    """The definitions' `klaviyo_properties` facts at this version (a full snapshot, like `segments`)."""
    transition_at: datetime | None = None
    """For a change that time alone made (no event): the exact instant it was due, for lateness metrics."""
    received_at: datetime | None = None
    """When the webhook that caused this change reached Evergreen; None for a change the sweep made."""

    @property
    def external_id(self) -> str:
        """The id Klaviyo knows this profile by: stable across syncs."""
        return external_id(self.shop, self.profile_key)

    def event_unique_id(self, segment: str, direction: str) -> str:
        """Stable id for one entered/exited event, so a retried push is de-duplicated by Klaviyo."""
        return f"evergreen:{self.shop}:{self.profile_key}:{segment}:{direction}:{self.version}"


class ErasedProfile(BaseModel):
    """One profile row of a redacted customer, as Klaviyo knows it."""

    model_config = ConfigDict(frozen=True)

    external_id: str
    klaviyo_profile_id: str | None = None


class ProfileErasure(BaseModel):
    """A customer redacted in Evergreen: clear in Klaviyo what Evergreen wrote there.

    Self-contained on purpose: it is published before the profile rows are deleted and handled after, so
    it carries the identifiers Klaviyo knows the profiles by and the segments whose lists they must leave,
    and nothing else (no email, phone or name).
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["erase"] = "erase"
    shop: str
    profiles: list[ErasedProfile]
    segments: list[str] = []
    requested_at: datetime


LIST_MOVE_CHUNK = 100
"""Members per list-move message. A full queue batch (100 messages) is then one bulk import job of 10,000 and
ten list calls of 1,000, and stays within SegmentSync's timeout even when every Klaviyo id must be looked up."""


class ListMember(BaseModel):
    """A segment member as a list move names it: its key, and its Klaviyo id when Evergreen knows it."""

    model_config = ConfigDict(frozen=True)

    profile_key: str
    klaviyo_profile_id: str | None = None


class ListMove(BaseModel):
    """Some members of a segment whose Klaviyo list changed: fill `to_list`, empty `from_lists`.

    The sweep finds the members; SegmentSync reads each one's current membership before it acts (see
    `domain.list_moves.member_lists`). No email, phone or name: profile keys and Klaviyo ids only.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["list-move"] = "list-move"
    shop: str
    segment: str
    from_lists: list[str] = []
    to_list: str | None = None
    members: list[ListMember]
    requested_at: datetime


QueueMessage = SegmentChange | ProfileErasure | ListMove
_QUEUE_MESSAGE: TypeAdapter[SegmentChange | ProfileErasure | ListMove] = TypeAdapter(QueueMessage)


def parse_queue_message(body: str | bytes) -> QueueMessage:
    """A segment-changes queue message; raises pydantic's ValidationError when it is none of the kinds."""
    return _QUEUE_MESSAGE.validate_json(body)


def erasure_for(shop: str, profiles: Iterable[Profile], now: datetime) -> ProfileErasure | None:
    """The Klaviyo clean-up for these (about to be deleted) profiles; None when there are none."""
    rows = list(profiles)
    if not rows:
        return None
    return ProfileErasure(
        shop=shop,
        profiles=[
            ErasedProfile(external_id=external_id(shop, row.key), klaviyo_profile_id=row.klaviyo_profile_id)
            for row in rows
        ],
        segments=sorted({segment for row in rows for segment in row.membership}),
        requested_at=now,
    )


def external_id(shop: str, profile_key: str) -> str:
    """The id Klaviyo knows a profile by (see `SegmentChange.external_id`)."""
    return f"{shop}/{profile_key}"
