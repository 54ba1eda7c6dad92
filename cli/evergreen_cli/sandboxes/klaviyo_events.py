"""The Klaviyo sandbox's engagement history: GET /api/metrics and GET /api/events, as Klaviyo pages them.

Load history with `POST /_sandbox/engagement` (replacing it) or add to it with `POST /_sandbox/events`, each a
JSON list of `{"metric": "Opened Email", "datetime": "2026-05-01T10:00:00Z", "email": "...", "phone_number": null,
"external_id": null, "id": null}`; metric names are Klaviyo's ("Opened Email", "Clicked Email", "Bounced Email",
"Marked Email as Spam", "Unsubscribed from Email Marketing", "Clicked SMS", "Unsubscribed from SMS Marketing").
Each event keeps the id it is given, or gets a new ULID-shaped one; both answers list the ids, the same ids a
system webhook delivers as `data[].external_id`. Filters: `equals(metric_id,...)` (required), and `datetime`
with `greater-or-equal`, `greater-than`, `less-or-equal` and `less-than`, as Klaviyo allows.
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

METRICS = (
    "Opened Email",
    "Clicked Email",
    "Bounced Email",
    "Marked Email as Spam",
    "Unsubscribed from Email Marketing",
    "Clicked SMS",
    "Unsubscribed from SMS Marketing",
    "Placed Order",
)
_METRIC_FILTER = re.compile(r'equals\(metric_id,["\']([^"\']+)["\']\)')
_DATETIME_FILTER = re.compile(r"(greater-or-equal|greater-than|less-or-equal|less-than)\(datetime,([^)]+)\)")
_COMPARISONS: dict[str, Callable[[datetime, datetime], bool]] = {
    "greater-or-equal": operator.ge,
    "greater-than": operator.gt,
    "less-or-equal": operator.le,
    "less-than": operator.lt,
}


def metric_id(name: str) -> str:
    return "M" + hashlib.sha256(name.encode()).hexdigest()[:5].upper()


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def add(history: list[dict[str, Any]], entries: list[dict[str, Any]]) -> list[str]:
    """Append `entries` to `history`, each with its own id (kept when given); their ids in order."""
    ids: list[str] = []
    for entry in entries:
        event = dict(entry)
        if not isinstance(event.get("id"), str) or not event["id"]:
            seed = f"{len(history)}|{event.get('metric')}|{event.get('datetime')}|{_profile_id(event)}"
            event["id"] = "01" + hashlib.sha256(seed.encode()).hexdigest()[:24].upper()
        history.append(event)
        ids.append(event["id"])
    return ids


def _profile_id(entry: Mapping[str, Any]) -> str:
    identity = str(entry.get("external_id") or entry.get("email") or entry.get("phone_number"))
    return "01" + hashlib.sha256(identity.encode()).hexdigest()[:24].upper()


def answer(history: list[dict[str, Any]], path: str, query: Mapping[str, str], base: str) -> tuple[int, Any]:
    """(status, body) for GET /api/metrics or GET /api/events."""
    if path == "/api/metrics":
        data = [{"type": "metric", "id": metric_id(name), "attributes": {"name": name}} for name in METRICS]
        return 200, {"data": data, "links": {"self": f"{base}/api/metrics", "next": None}}
    metric = _METRIC_FILTER.search(query.get("filter", ""))
    bounds = [(_COMPARISONS[op], _instant(value)) for op, value in _DATETIME_FILTER.findall(query.get("filter", ""))]
    if metric is None:
        return 400, {"errors": [{"status": 400, "code": "invalid", "detail": "filter on metric_id is required"}]}
    names = {metric_id(name): name for name in METRICS}
    matching = [
        entry
        for entry in history
        if names.get(metric.group(1)) == entry.get("metric")
        and all(holds(_instant(str(entry["datetime"])), bound) for holds, bound in bounds)
    ]
    matching.sort(key=lambda entry: _instant(str(entry["datetime"])), reverse=query.get("sort") == "-datetime")
    size = int(query.get("page[size]", "200"))
    offset = int(query.get("page[cursor]", "0") or 0)
    page = matching[offset : offset + size]
    data = [
        {
            "type": "event",
            "id": str(entry.get("id") or f"E{offset + index}"),
            "attributes": {"datetime": entry["datetime"]},
            "relationships": {"profile": {"data": {"type": "profile", "id": _profile_id(entry)}}},
        }
        for index, entry in enumerate(page)
    ]
    included = {
        _profile_id(entry): {
            "type": "profile",
            "id": _profile_id(entry),
            "attributes": {
                "email": entry.get("email"),
                "phone_number": entry.get("phone_number"),
                "external_id": entry.get("external_id"),
            },
        }
        for entry in page
    }
    following = None
    if offset + size < len(matching):
        following = f"{base}/api/events?" + urlencode({**query, "page[cursor]": str(offset + size)})
    return 200, {
        "data": data,
        "included": list(included.values()),
        "links": {"self": f"{base}/api/events", "next": following},
    }
