"""Reading Klaviyo's bulk profile import jobs: their status, and the profiles they refused (pure, no I/O).

A 202 only says Klaviyo accepted a job. `GET /api/profile-bulk-import-jobs/{id}` then moves from `queued` to
`processing` to `complete` (or `cancelled`, the spec's only other end); a complete job may still have refused
single profiles, listed by `GET .../import-errors` with a code, a title and a pointer into the job's payload.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

RUNNING = frozenset({"queued", "processing"})
"""Statuses of a job Klaviyo is still working on; `complete` is success, anything else ended it unimported."""
COMPLETE = "complete"

_POINTER_INDEX = re.compile(r"^/data/attributes/profiles/data/(?P<index>\d+)(?:/attributes/(?P<field>[A-Za-z_]+))?")
_CODE = re.compile(r"^[a-z0-9_.-]{1,64}$")
_PERMANENT_CODES = frozenset({"bad_request", "validation_error", "parse_error", "not_valid"})


@dataclass(frozen=True)
class JobFollow:
    """How long and how often a push follows its bulk jobs; time comes from the injected `clock` and `sleep`."""

    clock: Callable[[], float]
    sleep: Callable[[float], None]
    first_poll_s: float = 0.5
    """Wait before the second poll (the first is at once); it doubles up to `poll_cap_s`."""
    poll_cap_s: float = 5.0
    """Longest wait between two polls of the same jobs (Klaviyo allows 150 job reads a minute)."""
    max_wait_s: float = 240.0
    """Longest a push follows its jobs when the caller gives no deadline of its own."""


@dataclass(frozen=True)
class JobStatus:
    """What `GET /api/profile-bulk-import-jobs/{id}` says about a job."""

    status: str
    failed_count: int = 0

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE


@dataclass(frozen=True)
class RefusedProfile:
    """One profile a job refused: which one (external id or position in the job), and why, without PII."""

    external_id: str | None
    position: int | None
    code: str
    field: str | None

    @property
    def permanent(self) -> bool:
        """Klaviyo will refuse the same profile again (an invalid value); anything else is worth a retry."""
        return self.code.startswith("invalid") or self.code in _PERMANENT_CODES

    @property
    def reason(self) -> str:
        """Klaviyo's code and the field it names, e.g. `invalid (email)`: never the value itself."""
        return f"{self.code} ({self.field})" if self.field else self.code


def job_id(body: Any) -> str | None:
    """The job id of a 202 answer to a bulk import (`data.id`), or None."""
    data = body.get("data") if isinstance(body, dict) else None
    found = data.get("id") if isinstance(data, dict) else None
    return found if isinstance(found, str) and found else None


def job_status(body: Any) -> JobStatus | None:
    """The status of a job read back, or None when the answer has none."""
    data = body.get("data") if isinstance(body, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    status = attributes.get("status") if isinstance(attributes, dict) else None
    if not isinstance(status, str) or not status:
        return None
    failed = attributes.get("failed_count") if isinstance(attributes, dict) else None
    return JobStatus(status, failed if isinstance(failed, int) and failed > 0 else 0)


def import_errors(body: Any) -> tuple[list[RefusedProfile], str | None]:
    """One page of import errors and the cursor of the next page (None on the last)."""
    data = body.get("data") if isinstance(body, dict) else None
    errors = [_import_error(item) for item in data if isinstance(item, dict)] if isinstance(data, list) else []
    links = body.get("links") if isinstance(body, dict) else None
    following = links.get("next") if isinstance(links, dict) else None
    return errors, _cursor(following) if isinstance(following, str) and following else None


def _import_error(item: Mapping[str, Any]) -> RefusedProfile:
    attributes = item.get("attributes")
    attrs: Mapping[str, Any] = attributes if isinstance(attributes, dict) else {}
    code = attrs.get("code")
    source = attrs.get("source")
    pointer = source.get("pointer") if isinstance(source, dict) else None
    matched = _POINTER_INDEX.match(pointer) if isinstance(pointer, str) else None
    return RefusedProfile(
        external_id=_external_id(attrs.get("original_payload")),
        position=int(matched.group("index")) if matched else None,
        code=code.lower() if isinstance(code, str) and _CODE.match(code.lower()) else "unknown",
        field=matched.group("field") if matched else None,
    )


def _external_id(payload: Any) -> str | None:
    """The external id in an error's `original_payload` (a profile resource, or its attributes)."""
    if not isinstance(payload, dict):
        return None
    attributes = payload.get("attributes")
    found = (attributes if isinstance(attributes, dict) else payload).get("external_id")
    return found if isinstance(found, str) and found else None


def _cursor(url: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get("page[cursor]")
    return values[0] if values else None
