"""Klaviyo system webhooks: signature check and parsing into engagement facts. Pure: no I/O, time passed in.

Signature (docs/klaviyo.md says where this comes from): `Klaviyo-Signature` carries the lowercase hex
HMAC-SHA256, keyed with the webhook's secret, of the raw body followed by the `Klaviyo-Timestamp` header
value exactly as sent. Klaviyo sends that header as an HTTP date (IMF-fixdate, RFC 9110:
`Thu, 04 Jan 2024 18:05:25 GMT`); epoch seconds, epoch milliseconds and ISO 8601 are understood too.
The timestamp also bounds replays: a delivery older than `max_age_s` (25 hours by default, so a retry
Klaviyo sends up to 24 hours later with its first timestamp still verifies) or more than `max_future_s`
ahead of now is refused. An accepted replay is a no-op: deliveries are de-duplicated on `data[].external_id`.

Body: `{"data": [{"external_id", "topic", "payload"}], "meta": {...}}` where each payload has the shape of
a Get Event (GET /api/events/{id}) response.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from evergreen.domain.events import EngagementKind
from evergreen.domain.profile import normalise_email

SIGNATURE_HEADER = "Klaviyo-Signature"
TIMESTAMP_HEADER = "Klaviyo-Timestamp"
WEBHOOK_ID_HEADER = "Klaviyo-Webhook-Id"

TOPIC_KINDS: Mapping[str, EngagementKind] = {
    "event:klaviyo.opened_email": "email_open",
    "event:klaviyo.clicked_email": "email_click",
    "event:klaviyo.clicked_sms": "sms_click",
    "event:klaviyo.bounced_email": "email_bounce",
    "event:klaviyo.marked_email_as_spam": "email_spam",
    "event:klaviyo.unsubscribed_from_email_marketing": "email_unsubscribe",
    "event:klaviyo.unsubscribed_from_email": "email_unsubscribe",
    "event:klaviyo.unsubscribed": "email_unsubscribe",
    "event:klaviyo.unsubscribed_from_sms_marketing": "sms_unsubscribe",
    "event:klaviyo.unsubscribed_from_sms": "sms_unsubscribe",
}
"""Webhook topics Evergreen acts on. Any other topic parses with `kind=None` and is ignored."""

METRIC_KINDS: Mapping[str, EngagementKind] = {
    "opened email": "email_open",
    "clicked email": "email_click",
    "clicked sms": "sms_click",
    "bounced email": "email_bounce",
    "marked email as spam": "email_spam",
    "unsubscribed from email marketing": "email_unsubscribe",
    "unsubscribed from email": "email_unsubscribe",
    "unsubscribed": "email_unsubscribe",
    "unsubscribed from sms marketing": "sms_unsubscribe",
    "unsubscribed from sms": "sms_unsubscribe",
}
"""Fallback on the included metric's name (lower-cased) when the topic is not one we know."""

REPLAY_WINDOW_S = 25 * 3600
"""How old a signed timestamp may be: Klaviyo retries for up to 24 hours, plus an hour of slack."""
CLOCK_SKEW_S = 300
"""How far in the future a signed timestamp may be (the sender's clock running ahead of ours)."""

MAX_EVENTS = 1_000
"""Events per delivery: Klaviyo batches at most 1,000."""
MAX_EMAIL_CHARS = 254
"""The longest usable address in bytes (RFC 5321 path limit); it keeps profile keys far below DynamoDB's 1 KB."""
MAX_PHONE_CHARS = 64
MAX_ID_CHARS = 256
"""Bytes of external_id, topic, event and profile ids: Klaviyo's are 26-character ULIDs or short names."""

_HEX_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
_MILLISECONDS_FROM = 100_000_000_000  # a bigger epoch number is in milliseconds
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_IMF_FIXDATE = re.compile(
    r"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (" + "|".join(_MONTHS) + r") (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$"
)


class MalformedKlaviyoWebhook(ValueError):
    """The body is not a Klaviyo system webhook delivery we can trust to parse."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class KlaviyoEngagement:
    """One delivered Klaviyo event, reduced to what Evergreen's engagement facts need."""

    external_id: str
    """data[].external_id: the de-duplication key."""
    topic: str
    kind: EngagementKind | None
    """None for topics Evergreen ignores."""
    occurred_at: datetime
    email: str | None = None
    """Normalised (trimmed, lower-cased)."""
    phone: str | None = None
    klaviyo_profile_id: str | None = None
    event_id: str | None = None
    """The Klaviyo event id (payload data.id)."""
    metric_name: str | None = None
    bounce_type: str | None = None
    """For bounces, Klaviyo's "Bounce Type" event property when present (e.g. hard or soft)."""


@dataclass(frozen=True)
class KlaviyoWebhook:
    """A whole delivery: its meta block and its events in order."""

    webhook_id: str | None
    account_id: str | None
    sent_at: datetime | None
    engagements: tuple[KlaviyoEngagement, ...]


# --- signature ----------------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _digest(body: bytes, timestamp: str, secret: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), body, hashlib.sha256)
    mac.update(timestamp.encode("utf-8"))
    return mac.hexdigest()


def _parse_http_date(text: str) -> datetime | None:
    """An IMF-fixdate (RFC 9110 section 5.6.7), e.g. `Thu, 04 Jan 2024 18:05:25 GMT`; None otherwise."""
    match = _IMF_FIXDATE.match(text)
    if match is None:
        return None
    day, month, year, hour, minute, second = match.groups()
    try:
        return datetime(int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError:
        return None


def http_date(moment: datetime) -> str:
    """`moment` as an IMF-fixdate, the form Klaviyo sends in `Klaviyo-Timestamp`."""
    return format_datetime(_as_utc(moment).replace(microsecond=0), usegmt=True)


def parse_signature_timestamp(value: str) -> datetime | None:
    """`Klaviyo-Timestamp` as an aware UTC datetime: IMF-fixdate, epoch seconds, epoch milliseconds or ISO 8601."""
    text = value.strip()
    if not text or len(text) > 64:
        return None
    http = _parse_http_date(text)
    if http is not None:
        return http
    try:
        number = float(text)
    except ValueError:
        return _parse_iso(text)
    if not math.isfinite(number):
        return None
    seconds = number / 1000 if abs(number) >= _MILLISECONDS_FROM else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def verify_klaviyo_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    now: datetime,
    max_age_s: int = REPLAY_WINDOW_S,
    max_future_s: int = CLOCK_SKEW_S,
) -> bool:
    """True when the signature matches the raw body and the timestamp is at most `max_age_s` old
    and at most `max_future_s` ahead of now."""
    signature = _header(headers, SIGNATURE_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if not secret or not signature or timestamp is None:
        return False
    expected = _digest(body, timestamp, secret).encode("ascii")
    candidate = signature.strip().lower().encode("utf-8", "replace")
    matches = hmac.compare_digest(expected, candidate)
    sent_at = parse_signature_timestamp(timestamp)
    if sent_at is None:
        return False
    age_s = (_as_utc(now) - sent_at).total_seconds()
    return matches and -max_future_s <= age_s <= max_age_s


def sign_klaviyo_body(body: bytes, secret: str, timestamp: datetime | int | str) -> dict[str, str]:
    """The signature headers Klaviyo would send for `body` (for the local CLI and tests).

    A datetime becomes an IMF-fixdate, as Klaviyo sends it; an int becomes epoch seconds; a string is used as given.
    """
    stamp = http_date(timestamp) if isinstance(timestamp, datetime) else str(timestamp)
    return {SIGNATURE_HEADER: _digest(body, stamp, secret), TIMESTAMP_HEADER: stamp}


def looks_like_signature(value: str) -> bool:
    """Whether a header value has the shape of a Klaviyo signature (64 lowercase hex digits)."""
    return bool(_HEX_SIGNATURE.match(value.strip().lower()))


# --- parsing ------------------------------------------------------------------------------------


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_iso(value: str) -> datetime | None:
    if len(value) > 64:
        return None
    try:
        return _as_utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):
        return None


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _bounded(value: str | None, limit: int, where: str) -> str | None:
    """`value` when it fits in `limit` bytes of UTF-8 and is valid Unicode; else the delivery is refused.

    These values become DynamoDB keys or stay on the profile, so an unbounded one would fail every write.
    """
    if value is None:
        return None
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise MalformedKlaviyoWebhook(f"{where} is not valid Unicode") from error
    if size > limit:
        raise MalformedKlaviyoWebhook(f"{where} is longer than {limit} bytes")
    return value


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_webhook(body: bytes, headers: Mapping[str, str] | None = None) -> list[KlaviyoEngagement]:
    """The delivery's events, in order. Raises `MalformedKlaviyoWebhook` on a body we cannot trust."""
    return list(parse_envelope(body, headers).engagements)


def parse_envelope(body: bytes, headers: Mapping[str, str] | None = None) -> KlaviyoWebhook:
    """The whole delivery. With `headers`, a `Klaviyo-Webhook-Id` that differs from meta is refused."""
    try:
        document = json.loads(body)
    except RecursionError as error:
        raise MalformedKlaviyoWebhook("body is nested too deeply") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedKlaviyoWebhook("body is not JSON") from error
    if not isinstance(document, dict):
        raise MalformedKlaviyoWebhook("body is not a JSON object")
    data = document.get("data")
    if not isinstance(data, list):
        raise MalformedKlaviyoWebhook("data is not a list")
    if len(data) > MAX_EVENTS:
        raise MalformedKlaviyoWebhook(f"data has more than {MAX_EVENTS} events")
    meta = _obj(document.get("meta"))
    webhook_id = _text(meta.get("klaviyo_webhook_id"))
    header_id = _header(headers, WEBHOOK_ID_HEADER) if headers is not None else None
    if header_id is not None and webhook_id is not None and header_id.strip() != webhook_id:
        raise MalformedKlaviyoWebhook("Klaviyo-Webhook-Id header does not match meta.klaviyo_webhook_id")
    sent_at = _parse_iso(meta["timestamp"]) if isinstance(meta.get("timestamp"), str) else None
    engagements = tuple(_engagement(item, position, sent_at) for position, item in enumerate(data))
    return KlaviyoWebhook(
        webhook_id=webhook_id,
        account_id=_text(meta.get("klaviyo_account_id")),
        sent_at=sent_at,
        engagements=engagements,
    )


def _engagement(item: object, position: int, sent_at: datetime | None) -> KlaviyoEngagement:
    if not isinstance(item, dict):
        raise MalformedKlaviyoWebhook(f"data[{position}] is not an object")
    where = f"data[{position}]"
    external_id = _bounded(_text(item.get("external_id")), MAX_ID_CHARS, f"{where}.external_id")
    topic = _bounded(_text(item.get("topic")), MAX_ID_CHARS, f"{where}.topic")
    if external_id is None:
        raise MalformedKlaviyoWebhook(f"data[{position}].external_id is missing")
    if topic is None:
        raise MalformedKlaviyoWebhook(f"data[{position}].topic is missing")
    payload = item.get("payload")
    if not isinstance(payload, dict):
        raise MalformedKlaviyoWebhook(f"data[{position}].payload is not an object")
    event = _obj(payload.get("data"))
    attributes = _obj(event.get("attributes"))
    properties = _obj(attributes.get("event_properties"))
    raw_included = payload.get("included")
    included = [e for e in raw_included if isinstance(e, dict)] if isinstance(raw_included, list) else []
    relationships = _obj(event.get("relationships"))

    metric_id = _text(_obj(_obj(relationships.get("metric")).get("data")).get("id"))
    metric_name = _included_metric_name(included, metric_id)
    kind = TOPIC_KINDS.get(topic)
    if kind is None and metric_name is not None:
        kind = METRIC_KINDS.get(metric_name.lower())

    occurred_at = _occurred_at(attributes) or sent_at  # delivery time: minutes late at worst
    if occurred_at is None:
        raise MalformedKlaviyoWebhook(f"data[{position}] has no event datetime and meta has no timestamp")

    profile_id = _text(_obj(_obj(relationships.get("profile")).get("data")).get("id"))
    profile = _included_profile(included, profile_id)
    profile_attributes = _obj(profile.get("attributes")) if profile else {}
    if profile_id is None and profile:
        profile_id = _text(profile.get("id"))
    email = _text(profile_attributes.get("email")) or _first_text(properties, "$email", "email", "Email")
    phone = _text(profile_attributes.get("phone_number")) or _first_text(
        properties, "$phone_number", "phone_number", "Phone Number"
    )
    return KlaviyoEngagement(
        external_id=external_id,
        topic=topic,
        kind=kind,
        occurred_at=occurred_at,
        email=_bounded(normalise_email(email), MAX_EMAIL_CHARS, f"{where} email"),
        phone=_bounded(phone, MAX_PHONE_CHARS, f"{where} phone number"),
        klaviyo_profile_id=_bounded(profile_id, MAX_ID_CHARS, f"{where} profile id"),
        event_id=_bounded(_text(event.get("id")), MAX_ID_CHARS, f"{where} event id"),
        metric_name=metric_name,
        bounce_type=_first_text(properties, "Bounce Type", "bounce_type", "$bounce_type")
        if kind == "email_bounce"
        else None,
    )


def _occurred_at(attributes: Mapping[str, Any]) -> datetime | None:
    raw = attributes.get("datetime")
    if isinstance(raw, str):
        parsed = _parse_iso(raw)
        if parsed is not None:
            return parsed
    stamp = attributes.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return parse_signature_timestamp(str(stamp))
    return None


def _included_metric_name(included: list[dict[str, Any]], metric_id: str | None) -> str | None:
    metrics = [entry for entry in included if entry.get("type") == "metric"]
    chosen = next((m for m in metrics if metric_id is not None and m.get("id") == metric_id), None)
    if chosen is None and len(metrics) == 1:
        chosen = metrics[0]
    return _text(_obj(chosen.get("attributes")).get("name")) if chosen else None


def _included_profile(included: list[dict[str, Any]], profile_id: str | None) -> dict[str, Any] | None:
    profiles = [entry for entry in included if entry.get("type") == "profile"]
    chosen = next((p for p in profiles if profile_id is not None and p.get("id") == profile_id), None)
    if chosen is None and len(profiles) == 1 and (profile_id is None or profiles[0].get("id") in (None, profile_id)):
        chosen = profiles[0]
    return chosen


def _first_text(properties: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = _text(properties.get(key))
        if value is not None:
            return value
    return None
