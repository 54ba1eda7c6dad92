"""Pure builders of every Klaviyo API call that sync makes.

No I/O here: each builder returns a `KlaviyoRequest` (method, path, JSON:API body, query) that the client
sends with the auth/revision headers. Endpoints, body shapes and rate limits follow Klaviyo's OpenAPI spec,
revision `evergreen.settings.KLAVIYO_REVISION`; tests/contract/test_klaviyo_contract.py checks every one.

Consent rule: nothing built here ever carries subscription or consent fields. Sync never subscribes anyone.
"""

from __future__ import annotations

import json as _json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import phonenumbers

from evergreen.domain.changes import SegmentChange
from evergreen.domain.facts import FACT_TYPES
from evergreen.segments.definitions import DISTANCE_FACT
from evergreen.segments.rfm import RFM_FACTS

Direction = Literal["entered", "exited"]
JsonObject = dict[str, Any]

SEGMENTS_PROPERTY = "evergreen_segments"
"""Profile property holding the sorted segment list, for Klaviyo segments that filter on "contains"."""
VERSION_PROPERTY = "evergreen_synced_version"
"""Profile property holding the profile version this snapshot came from."""
SEGMENT_EVENT_PROPERTY = "segment"
METRIC_NAMES: Mapping[Direction, str] = {
    "entered": "Evergreen Entered Segment",
    "exited": "Evergreen Exited Segment",
}

MAX_LIST_PROFILES = 1_000
"""Profiles per add/remove list-relationship call."""
MAX_BULK_EVENTS = 1_000
"""Events per bulk event job."""
MAX_BULK_PROFILES = 10_000
"""Profiles per bulk profile import job."""
MAX_BULK_PAYLOAD_BYTES = 5_000_000
"""Request body limit of both bulk jobs (Klaviyo says 5MB; the decimal reading is the safe one)."""
MAX_PROFILE_LOOKUP = 50
"""External ids resolved to Klaviyo profile ids per GET /api/profiles call (page size allows 100)."""

OP_PROFILE_IMPORT = "create_or_update_profile"
OP_BULK_PROFILES = "bulk_import_profiles"
OP_EVENT = "create_event"
OP_BULK_EVENTS = "bulk_create_events"
OP_LIST_ADD = "add_profiles_to_list"
OP_LIST_REMOVE = "remove_profiles_from_list"
OP_GET_PROFILES = "get_profiles"
OP_GET_PROFILE = "get_profile"
OP_PROFILE_DELETION = "request_profile_deletion"
OP_GET_IMPORT_JOB = "get_bulk_import_profiles_job"
OP_GET_IMPORT_ERRORS = "get_errors_for_bulk_import_profiles_job"

MAX_IMPORT_ERRORS_PAGE = 100
"""Import errors per page of GET /api/profile-bulk-import-jobs/{id}/import-errors (the spec's maximum)."""
OP_LIST_MEMBER_IDS = "get_profile_ids_for_list"

FACT_PROPERTY_PREFIX = "evergreen_"
"""A fact pushed as a property is named `evergreen_<fact>`, e.g. `evergreen_net_spent`."""
FACT_PROPERTIES = tuple(f"{FACT_PROPERTY_PREFIX}{name}" for name in (*FACT_TYPES, *RFM_FACTS, DISTANCE_FACT))
"""Every property a `klaviyo_properties` list can produce (erasure removes them all, whatever the list)."""
EVERGREEN_PROPERTIES = (SEGMENTS_PROPERTY, VERSION_PROPERTY, *FACT_PROPERTIES)
"""Every profile property Evergreen writes: what an erasure unsets."""


@dataclass(frozen=True)
class RateLimit:
    """One endpoint's documented limits: a burst per second and a steady rate per minute."""

    burst_per_second: int
    steady_per_minute: int


RATE_LIMITS: Mapping[str, RateLimit] = {
    # From each operation's `x-klaviyo-ratelimit` in stable.json (the contract test keeps these honest).
    OP_PROFILE_IMPORT: RateLimit(75, 750),
    OP_BULK_PROFILES: RateLimit(10, 150),
    OP_EVENT: RateLimit(350, 3500),
    OP_BULK_EVENTS: RateLimit(10, 150),
    OP_LIST_ADD: RateLimit(10, 150),
    OP_LIST_REMOVE: RateLimit(10, 150),
    OP_GET_PROFILES: RateLimit(75, 750),
    OP_GET_PROFILE: RateLimit(75, 750),
    OP_PROFILE_DELETION: RateLimit(3, 60),
    OP_GET_IMPORT_JOB: RateLimit(10, 150),
    OP_GET_IMPORT_ERRORS: RateLimit(10, 150),
    OP_LIST_MEMBER_IDS: RateLimit(75, 750),
}

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_SAFE_FILTER_VALUE = re.compile(r'^[^"\\]+$')
_KLAVIYO_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")


@dataclass(frozen=True)
class KlaviyoRequest:
    """One Klaviyo API call, without headers (the client adds auth, revision and content type)."""

    method: str
    path: str
    json: JsonObject | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    operation: str = ""
    """Klaviyo's operationId: the key for rate limits and metrics."""

    def body_bytes(self) -> bytes | None:
        """The body exactly as sent (compact UTF-8 JSON), or None for a body-less call."""
        return None if self.json is None else encode_json(self.json)


@dataclass(frozen=True)
class SegmentEvent:
    """One "Entered segment" / "Exited segment" fact to record in Klaviyo."""

    segment: str
    direction: Direction


@dataclass(frozen=True)
class ProfileEvents:
    """The events of one change, with the Klaviyo profile id when known."""

    change: SegmentChange
    events: tuple[SegmentEvent, ...]
    klaviyo_profile_id: str | None = None


def encode_json(value: Any) -> bytes:
    return _json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- profile attributes -------------------------------------------------------------------------


def e164_phone(phone: str | None) -> str | None:
    """The phone in E.164 form, or None when Klaviyo would refuse it.

    Klaviyo validates numbers with libphonenumber's rules, so this does too (`phonenumbers`, from the
    phonenumberslite distribution): the number must be written internationally (`+` and the country code,
    separators dropped) and be a valid number of its region, not merely 7-15 digits (`+1 555 000 0000` is not).
    """
    if not phone:
        return None
    compact = _PHONE_SEPARATORS.sub("", phone.strip())
    if not _E164.match(compact):
        return None
    try:
        parsed = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_left_out(phone: str | None) -> bool:
    """A phone is known but Klaviyo would refuse it, so the profile is sent without it."""
    return bool(phone and phone.strip()) and e164_phone(phone) is None


def usable_email(email: str | None) -> str | None:
    """The email trimmed, or None when blank or clearly not an address."""
    if not email:
        return None
    cleaned = email.strip()
    if "@" not in cleaned or any(ch.isspace() for ch in cleaned):
        return None
    return cleaned


def profile_identifiers(change: SegmentChange) -> JsonObject:
    """external_id always; email and phone_number only when usable (absent fields stay untouched)."""
    identifiers: JsonObject = {}
    email = usable_email(change.email)
    if email:
        identifiers["email"] = email
    phone = e164_phone(change.phone)
    if phone:
        identifiers["phone_number"] = phone
    identifiers["external_id"] = change.external_id
    return identifiers


def profile_attributes(change: SegmentChange) -> JsonObject:
    """Identifiers, names and the segment snapshot properties. Never consent or subscriptions."""
    attributes = profile_identifiers(change)
    if change.first_name and change.first_name.strip():
        attributes["first_name"] = change.first_name.strip()
    if change.last_name and change.last_name.strip():
        attributes["last_name"] = change.last_name.strip()
    attributes["properties"] = {
        SEGMENTS_PROPERTY: sorted(set(change.segments)),
        VERSION_PROPERTY: change.version,
        **{f"{FACT_PROPERTY_PREFIX}{name}": value for name, value in change.properties.items()},
    }
    return attributes


def profile_resource(change: SegmentChange, klaviyo_profile_id: str | None = None) -> JsonObject:
    """The profile as Klaviyo upserts it; with a known Klaviyo id, that very profile is updated."""
    resource: JsonObject = {"type": "profile", "attributes": profile_attributes(change)}
    known_id = klaviyo_profile_id or change.klaviyo_profile_id
    if known_id:
        resource["id"] = known_id
    return resource


# --- profiles -----------------------------------------------------------------------------------


def profile_import(change: SegmentChange, klaviyo_profile_id: str | None = None) -> KlaviyoRequest:
    """POST /api/profile-import: upsert one profile; the response's data.id is its Klaviyo id."""
    return KlaviyoRequest(
        method="POST",
        path="/api/profile-import",
        json={"data": profile_resource(change, klaviyo_profile_id)},
        # Sparse fieldset: the answer carries the id without echoing PII or subscriptions back.
        query={"fields[profile]": "external_id"},
        operation=OP_PROFILE_IMPORT,
    )


def profile_bulk_import(changes: Sequence[SegmentChange], list_ids: Iterable[str] = ()) -> KlaviyoRequest:
    """POST /api/profile-bulk-import-jobs: upsert up to 10,000 profiles, adding all of them to `list_ids`."""
    return _bulk_import([profile_resource(change) for change in changes], list_ids)


def _bulk_import(profiles: Sequence[JsonObject], list_ids: Iterable[str]) -> KlaviyoRequest:
    if not profiles:
        raise ValueError("a bulk profile import needs at least one profile")
    if len(profiles) > MAX_BULK_PROFILES:
        raise ValueError(f"a bulk profile import takes at most {MAX_BULK_PROFILES} profiles")
    job: JsonObject = {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": list(profiles)}}}
    lists = sorted(set(list_ids))
    if lists:
        job["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id} for list_id in lists]}}
    return KlaviyoRequest(
        method="POST", path="/api/profile-bulk-import-jobs", json={"data": job}, operation=OP_BULK_PROFILES
    )


def list_fill_import(list_id: str, external_ids: Sequence[str]) -> KlaviyoRequest:
    """POST /api/profile-bulk-import-jobs: add up to 10,000 profiles Klaviyo knows by external id to one list.

    Identifiers only: a list move must never write a snapshot (it could be older than the one sync sends).
    """
    if not list_id or "/" in list_id:
        raise ValueError("invalid Klaviyo list id")
    unique = dict.fromkeys(external_ids)
    return _bulk_import(
        [{"type": "profile", "attributes": {"external_id": external_id}} for external_id in unique], [list_id]
    )


def profile_lookup(external_ids: Sequence[str]) -> KlaviyoRequest:
    """GET /api/profiles filtered on external ids: resolves Klaviyo profile ids in one call."""
    if not external_ids or len(external_ids) > MAX_PROFILE_LOOKUP:
        raise ValueError(f"a profile lookup takes 1 to {MAX_PROFILE_LOOKUP} external ids")
    if not all(_SAFE_FILTER_VALUE.match(value) for value in external_ids):
        raise ValueError("external ids with quotes or backslashes cannot be used in a filter")
    quoted = ",".join(f'"{value}"' for value in external_ids)
    return KlaviyoRequest(
        method="GET",
        path="/api/profiles",
        query={
            "filter": f"any(external_id,[{quoted}])",
            "fields[profile]": "external_id",
            "page[size]": "100",
        },
        operation=OP_GET_PROFILES,
    )


def profile_segments_lookup(external_ids: Sequence[str]) -> KlaviyoRequest:
    """GET /api/profiles filtered on external ids, with their properties: what `evergreen audit` compares."""
    request = profile_lookup(external_ids)
    return KlaviyoRequest(
        method=request.method,
        path=request.path,
        query={**request.query, "fields[profile]": "external_id,properties"},
        operation=request.operation,
    )


def list_member_ids(list_id: str, cursor: str | None = None) -> KlaviyoRequest:
    """GET /api/lists/{id}/relationships/profiles: one page (100) of a list's member profile ids."""
    if not list_id or "/" in list_id:
        raise ValueError("invalid Klaviyo list id")
    query = {"page[size]": "100"}
    if cursor:
        query["page[cursor]"] = cursor
    return KlaviyoRequest(
        method="GET", path=f"/api/lists/{list_id}/relationships/profiles", query=query, operation=OP_LIST_MEMBER_IDS
    )


def get_profile(klaviyo_profile_id: str) -> KlaviyoRequest:
    """GET /api/profiles/{id}: who a Klaviyo profile is (external_id, email, phone), nothing else."""
    if not _KLAVIYO_ID.match(klaviyo_profile_id):
        raise ValueError("a Klaviyo profile id is 1 to 64 letters and digits")
    return KlaviyoRequest(
        method="GET",
        path=f"/api/profiles/{klaviyo_profile_id}",
        query={"fields[profile]": "external_id,email,phone_number"},
        operation=OP_GET_PROFILE,
    )


def klaviyo_profile_id_usable(klaviyo_profile_id: str) -> bool:
    """Whether `get_profile` can carry this id (letters and digits only, so it stays one path segment)."""
    return bool(_KLAVIYO_ID.match(klaviyo_profile_id))


def unset_evergreen_properties(external_id: str, klaviyo_profile_id: str) -> KlaviyoRequest:
    """POST /api/profile-import on a known profile: remove Evergreen's properties, touching nothing else.

    `meta.patch_properties.unset` drops the keys and their values; the external id is the one the profile
    already has (an identifier Klaviyo matches on), so nothing new is written.
    """
    return KlaviyoRequest(
        method="POST",
        path="/api/profile-import",
        json={
            "data": {
                "type": "profile",
                "id": klaviyo_profile_id,
                "attributes": {"external_id": external_id},
                "meta": {"patch_properties": {"unset": list(EVERGREEN_PROPERTIES)}},
            }
        },
        query={"fields[profile]": "external_id"},
        operation=OP_PROFILE_IMPORT,
    )


def request_profile_deletion(klaviyo_profile_id: str) -> KlaviyoRequest:
    """POST /api/data-privacy-deletion-jobs: Klaviyo's own GDPR deletion of one profile (asynchronous, 202)."""
    return KlaviyoRequest(
        method="POST",
        path="/api/data-privacy-deletion-jobs",
        json={
            "data": {
                "type": "data-privacy-deletion-job",
                "attributes": {"profile": {"data": {"type": "profile", "id": klaviyo_profile_id, "attributes": {}}}},
            }
        },
        operation=OP_PROFILE_DELETION,
    )


def get_profile_import_job(job_id: str) -> KlaviyoRequest:
    """GET /api/profile-bulk-import-jobs/{job_id}: a bulk import job's status and counts."""
    return KlaviyoRequest(
        method="GET",
        path=f"/api/profile-bulk-import-jobs/{_job_id(job_id)}",
        query={"fields[profile-bulk-import-job]": "status,total_count,completed_count,failed_count"},
        operation=OP_GET_IMPORT_JOB,
    )


def profile_import_errors(job_id: str, cursor: str | None = None) -> KlaviyoRequest:
    """GET /api/profile-bulk-import-jobs/{id}/import-errors: the profiles a job refused, one page.

    `original_payload` is asked for only to map each error back to its profile by external id; it carries what
    was sent (PII) and is never logged or kept.
    """
    query = {
        "fields[import-error]": "code,title,source.pointer,original_payload",
        "page[size]": str(MAX_IMPORT_ERRORS_PAGE),
    }
    if cursor:
        query["page[cursor]"] = cursor
    return KlaviyoRequest(
        method="GET",
        path=f"/api/profile-bulk-import-jobs/{_job_id(job_id)}/import-errors",
        query=query,
        operation=OP_GET_IMPORT_ERRORS,
    )


def usable_job_id(job_id: str) -> bool:
    """Whether a job id Klaviyo answered can be put in a path (letters, digits, dashes, underscores)."""
    return bool(_JOB_ID.match(job_id))


def _job_id(job_id: str) -> str:
    if not usable_job_id(job_id):
        raise ValueError("a Klaviyo job id is 1 to 128 letters, digits, dashes or underscores")
    return job_id


def filterable_external_id(external_id: str) -> bool:
    """Whether `profile_lookup` can carry this external id."""
    return bool(_SAFE_FILTER_VALUE.match(external_id))


# --- events -------------------------------------------------------------------------------------


def segment_events(change: SegmentChange) -> tuple[SegmentEvent, ...]:
    """The change's entered then exited segments, each once, in a stable order."""
    entered = [SegmentEvent(segment, "entered") for segment in sorted(set(change.entered))]
    exited = [SegmentEvent(segment, "exited") for segment in sorted(set(change.exited))]
    return (*entered, *exited)


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime is taken to be UTC already."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def event_attributes(change: SegmentChange, event: SegmentEvent) -> JsonObject:
    """Metric, properties, time and the stable unique_id that lets Klaviyo drop a retried duplicate."""
    return {
        "properties": {SEGMENT_EVENT_PROPERTY: event.segment},
        "time": utc_iso(change.changed_at),
        "unique_id": change.event_unique_id(event.segment, event.direction),
        "metric": {"data": {"type": "metric", "attributes": {"name": METRIC_NAMES[event.direction]}}},
    }


def event_profile(change: SegmentChange, klaviyo_profile_id: str | None = None) -> JsonObject:
    """The profile an event belongs to: identifiers only, so an event never rewrites the profile."""
    data: JsonObject = {"type": "profile", "attributes": profile_identifiers(change)}
    if klaviyo_profile_id:
        data["id"] = klaviyo_profile_id
    return {"data": data}


def create_event(change: SegmentChange, event: SegmentEvent, klaviyo_profile_id: str | None = None) -> KlaviyoRequest:
    """POST /api/events: one entered/exited event."""
    attributes = event_attributes(change, event)
    attributes["profile"] = event_profile(change, klaviyo_profile_id)
    return KlaviyoRequest(
        method="POST",
        path="/api/events",
        json={"data": {"type": "event", "attributes": attributes}},
        operation=OP_EVENT,
    )


def bulk_create_events(entries: Sequence[ProfileEvents]) -> KlaviyoRequest:
    """POST /api/event-bulk-create-jobs: up to 1,000 events, grouped per profile."""
    total = sum(len(entry.events) for entry in entries)
    if total == 0:
        raise ValueError("a bulk event job needs at least one event")
    if total > MAX_BULK_EVENTS:
        raise ValueError(f"a bulk event job takes at most {MAX_BULK_EVENTS} events")
    data = [
        {
            "type": "event-bulk-create",
            "attributes": {
                "profile": event_profile(entry.change, entry.klaviyo_profile_id),
                "events": {
                    "data": [
                        {"type": "event", "attributes": event_attributes(entry.change, event)} for event in entry.events
                    ]
                },
            },
        }
        for entry in entries
        if entry.events
    ]
    return KlaviyoRequest(
        method="POST",
        path="/api/event-bulk-create-jobs",
        json={"data": {"type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": data}}}},
        operation=OP_BULK_EVENTS,
    )


# --- lists --------------------------------------------------------------------------------------


def _list_members(list_id: str, profile_ids: Sequence[str]) -> tuple[str, JsonObject]:
    if not list_id or "/" in list_id:
        raise ValueError("invalid Klaviyo list id")
    if not profile_ids or len(profile_ids) > MAX_LIST_PROFILES:
        raise ValueError(f"a list call takes 1 to {MAX_LIST_PROFILES} profile ids")
    ordered = list(dict.fromkeys(profile_ids))
    body: JsonObject = {"data": [{"type": "profile", "id": profile_id} for profile_id in ordered]}
    return f"/api/lists/{list_id}/relationships/profiles", body


def add_profiles_to_list(list_id: str, profile_ids: Sequence[str]) -> KlaviyoRequest:
    """POST /api/lists/{id}/relationships/profiles: add up to 1,000 profiles (no consent implied)."""
    path, body = _list_members(list_id, profile_ids)
    return KlaviyoRequest(method="POST", path=path, json=body, operation=OP_LIST_ADD)


def remove_profiles_from_list(list_id: str, profile_ids: Sequence[str]) -> KlaviyoRequest:
    """DELETE /api/lists/{id}/relationships/profiles: remove up to 1,000 profiles."""
    path, body = _list_members(list_id, profile_ids)
    return KlaviyoRequest(method="DELETE", path=path, json=body, operation=OP_LIST_REMOVE)


# --- planning -----------------------------------------------------------------------------------


def pack[T](
    items: Sequence[T],
    *,
    max_count: int,
    max_bytes: int | None = None,
    size_of: Callable[[T], int] | None = None,
) -> list[list[T]]:
    """Split items, in order, into chunks of at most `max_count` items and `max_bytes` summed sizes.

    An item larger than `max_bytes` on its own still gets a chunk to itself (Klaviyo then decides).
    """
    chunks: list[list[T]] = []
    current: list[T] = []
    current_bytes = 0
    for item in items:
        size = size_of(item) if size_of is not None and max_bytes is not None else 0
        over_count = len(current) >= max_count
        over_bytes = max_bytes is not None and current and current_bytes + size > max_bytes
        if current and (over_count or over_bytes):
            chunks.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += size
    if current:
        chunks.append(current)
    return chunks


BULK_ENVELOPE_BYTES = 4_096
"""Room left in a bulk job for its envelope and list relationships."""


def profile_resource_bytes(change: SegmentChange) -> int:
    """Bytes one profile adds to a bulk import body (its JSON plus a separating comma)."""
    return len(encode_json(profile_resource(change))) + 1


def plan_bulk_profile_jobs(changes: Sequence[SegmentChange]) -> list[list[int]]:
    """Indexes of `changes` per bulk import job: at most 10,000 profiles and under 5 MB each."""
    indexes = list(range(len(changes)))
    return pack(
        indexes,
        max_count=MAX_BULK_PROFILES,
        max_bytes=MAX_BULK_PAYLOAD_BYTES - BULK_ENVELOPE_BYTES,
        size_of=lambda index: profile_resource_bytes(changes[index]),
    )


def plan_bulk_event_jobs(entries: Sequence[ProfileEvents]) -> list[list[ProfileEvents]]:
    """Bulk event jobs of at most 1,000 events and under 5 MB; a profile's events are split if needed."""
    pieces: list[ProfileEvents] = []
    for entry in entries:
        for start in range(0, len(entry.events), MAX_BULK_EVENTS):
            some = entry.events[start : start + MAX_BULK_EVENTS]
            if some:
                pieces.append(ProfileEvents(entry.change, some, entry.klaviyo_profile_id))
    jobs: list[list[ProfileEvents]] = []
    current: list[ProfileEvents] = []
    count = 0
    size = 0
    budget = MAX_BULK_PAYLOAD_BYTES - BULK_ENVELOPE_BYTES
    for piece in pieces:
        piece_size = len(encode_json(bulk_create_events([piece]).json)) + 1
        if current and (count + len(piece.events) > MAX_BULK_EVENTS or size + piece_size > budget):
            jobs.append(current)
            current, count, size = [], 0, 0
        current.append(piece)
        count += len(piece.events)
        size += piece_size
    if current:
        jobs.append(current)
    return jobs
