"""The Klaviyo sandbox's engagement history: GET /api/metrics and GET /api/events, as Klaviyo pages them.

Load history with `POST /_sandbox/engagement` and a JSON list of
`{"metric": "Opened Email", "datetime": "2026-05-01T10:00:00Z", "email": "...", "phone_number": null,
"external_id": null}`; metric names are Klaviyo's ("Opened Email", "Clicked Email", "Bounced Email",
"Marked Email as Spam", "Unsubscribed from Email Marketing", "Clicked SMS", "Unsubscribed from SMS Marketing").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
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
_SINCE_FILTER = re.compile(r"greater-or-equal\(datetime,([^)]+)\)")


def metric_id(name: str) -> str:
    return "M" + hashlib.sha256(name.encode()).hexdigest()[:5].upper()


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _profile_id(entry: Mapping[str, Any]) -> str:
    identity = str(entry.get("external_id") or entry.get("email") or entry.get("phone_number"))
    return "01" + hashlib.sha256(identity.encode()).hexdigest()[:24].upper()


def answer(history: list[dict[str, Any]], path: str, query: Mapping[str, str], base: str) -> tuple[int, Any]:
    """(status, body) for GET /api/metrics or GET /api/events."""
    if path == "/api/metrics":
        data = [{"type": "metric", "id": metric_id(name), "attributes": {"name": name}} for name in METRICS]
        return 200, {"data": data, "links": {"self": f"{base}/api/metrics", "next": None}}
    metric = _METRIC_FILTER.search(query.get("filter", ""))
    since = _SINCE_FILTER.search(query.get("filter", ""))
    if metric is None:
        return 400, {"errors": [{"status": 400, "code": "invalid", "detail": "filter on metric_id is required"}]}
    cutoff = _instant(since.group(1)) if since else None
    names = {metric_id(name): name for name in METRICS}
    matching = [
        entry
        for entry in history
        if names.get(metric.group(1)) == entry.get("metric")
        and (cutoff is None or _instant(str(entry["datetime"])) >= cutoff)
    ]
    matching.sort(key=lambda entry: _instant(str(entry["datetime"])), reverse=query.get("sort") == "-datetime")
    size = int(query.get("page[size]", "200"))
    offset = int(query.get("page[cursor]", "0") or 0)
    page = matching[offset : offset + size]
    data = [
        {
            "type": "event",
            "id": f"E{offset + index}",
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
