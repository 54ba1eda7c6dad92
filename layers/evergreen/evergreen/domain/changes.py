"""The message that carries a membership change from the table to Klaviyo."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


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
    transition_at: datetime | None = None
    """For a change that time alone made (no event): the exact instant it was due, for lateness metrics."""

    @property
    def external_id(self) -> str:
        """The id Klaviyo knows this profile by: stable across syncs."""
        return f"{self.shop}/{self.profile_key}"

    def event_unique_id(self, segment: str, direction: str) -> str:
        """Stable id for one entered/exited event, so a retried push is de-duplicated by Klaviyo."""
        return f"evergreen:{self.shop}:{self.profile_key}:{segment}:{direction}:{self.version}"
