"""The Klaviyo sandbox's bulk profile import jobs: accepted at once, done later, refusing what Klaviyo refuses.

A job is `queued` for the first fifth of the sandbox's job time, `processing` until the time is up, then
`complete` (its valid profiles are imported and join the job's lists at that moment) or `cancelled` when the
sandbox was told to fail it (nothing is imported). A profile whose email is not an address or whose phone is not
a number libphonenumber accepts (Klaviyo validates with its rules) is refused: it is listed under the job's
`import-errors`, with a pointer to the field, and the rest of the job is imported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
QUEUED_SHARE = 0.2
"""Part of the job time a job stays `queued` before it is `processing`."""


def invalid_fields(attributes: Mapping[str, Any]) -> list[str]:
    """The identifier fields of a profile Klaviyo would refuse: an email that is no address, an invalid phone."""
    invalid: list[str] = []
    email = attributes.get("email")
    if email is not None and not (isinstance(email, str) and _EMAIL.match(email.strip())):
        invalid.append("email")
    phone = attributes.get("phone_number")
    if phone is not None and not _valid_phone(phone):
        invalid.append("phone_number")
    return invalid


def _valid_phone(phone: object) -> bool:
    if not isinstance(phone, str):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return False


def refusal(pointer: str, field_name: str, payload: Any = None) -> dict[str, Any]:
    """One import error as Klaviyo lists it (the detail names the field, never the value)."""
    return {
        "code": "invalid",
        "title": "Invalid input.",
        "detail": f"Invalid {field_name.replace('_', ' ')}.",
        "source": {"pointer": pointer},
        "original_payload": payload,
    }


@dataclass
class BulkJob:
    """One accepted bulk profile import job."""

    job_id: str
    accepted: float
    """Monotonic time of acceptance."""
    created_at: datetime
    seconds: float
    """How long it takes from acceptance to its end."""
    profiles: list[tuple[Mapping[str, Any], str | None]]
    """The valid profiles: attributes and the Klaviyo id named, imported when the job completes."""
    list_ids: list[str]
    total: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    cancel: bool = False
    ended: bool = False

    def status(self, now: float) -> str:
        elapsed = now - self.accepted
        if elapsed >= self.seconds:
            return "cancelled" if self.cancel else "complete"
        return "queued" if elapsed < self.seconds * QUEUED_SHARE else "processing"

    def resource(self, now: float, base: str, fields: list[str]) -> dict[str, Any]:
        """The job as GET /api/profile-bulk-import-jobs/{id} shows it (limited to `fields` when given)."""
        status = self.status(now)
        done = status == "complete"
        started = self.created_at + timedelta(seconds=self.seconds * QUEUED_SHARE)
        attributes: dict[str, Any] = {
            "status": status,
            "created_at": self.created_at.isoformat(),
            "total_count": self.total,
            "completed_count": self.total - len(self.errors) if done else 0,
            "failed_count": len(self.errors) if done else 0,
            "completed_at": (self.created_at + timedelta(seconds=self.seconds)).isoformat() if done else None,
            "expires_at": (self.created_at + timedelta(days=7)).isoformat(),
            "started_at": started.isoformat() if status != "queued" else None,
        }
        if fields:
            attributes = {name: value for name, value in attributes.items() if name in fields}
        link = f"{base}/api/profile-bulk-import-jobs/{self.job_id}/"
        return {"type": "profile-bulk-import-job", "id": self.job_id, "attributes": attributes, "links": {"self": link}}

    def errors_page(self, now: float, base: str, query: Mapping[str, str]) -> dict[str, Any]:
        """GET .../import-errors: the refused profiles once the job is complete, `page[size]` at a time."""
        listed = self.errors if self.status(now) == "complete" else []
        size = max(1, min(100, int(query.get("page[size]") or 20)))
        start = int(query.get("page[cursor]") or 0)
        fields = [name for name in query.get("fields[import-error]", "").split(",") if name]
        path = f"{base}/api/profile-bulk-import-jobs/{self.job_id}/import-errors"
        data = [
            {"type": "import-error", "id": f"{self.job_id}-{start + n}", "attributes": _sparse(error, fields)}
            for n, error in enumerate(listed[start : start + size])
        ]
        links: dict[str, Any] = {"self": path}
        if start + size < len(listed):
            links["next"] = f"{path}?page%5Bcursor%5D={start + size}&page%5Bsize%5D={size}"
        return {"data": data, "links": links}


def _sparse(error: Mapping[str, Any], fields: list[str]) -> dict[str, Any]:
    if not fields:
        return dict(error)
    wanted = {name.split(".", 1)[0] for name in fields}
    return {name: value for name, value in error.items() if name in wanted}


def now_utc() -> datetime:
    return datetime.now(UTC)
