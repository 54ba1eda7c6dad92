"""What Klaviyo holds of Evergreen's work, read for `evergreen audit`: each profile's `evergreen_segments` property
and each mapped list's members. Reads only; the audit's repairs go through the normal sync path."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from evergreen.klaviyo import requests as kr
from evergreen.klaviyo.client import KlaviyoClient

LOOKUP_CHUNK = kr.MAX_PROFILE_LOOKUP
"""External ids per profile lookup (what one filter may name)."""


class KlaviyoHoldings:
    def __init__(self, client: KlaviyoClient) -> None:
        self._client = client

    def segments_of(self, external_ids: Sequence[str]) -> dict[str, tuple[str, list[str] | None]]:
        """Per external id Klaviyo knows: its Klaviyo id and its `evergreen_segments` (None when unset)."""
        found: dict[str, tuple[str, list[str] | None]] = {}
        unique = list(dict.fromkeys(external_ids))
        for offset in range(0, len(unique), LOOKUP_CHUNK):
            answer = self._client.send(kr.profile_segments_lookup(unique[offset : offset + LOOKUP_CHUNK])).json()
            for item in answer.get("data") or []:
                attributes = item.get("attributes") or {}
                segments = (attributes.get("properties") or {}).get(kr.SEGMENTS_PROPERTY)
                shown = [str(name) for name in segments] if isinstance(segments, list) else None
                found[str(attributes.get("external_id"))] = (str(item.get("id")), shown)
        return found

    def list_members(self, list_id: str) -> set[str]:
        """Every profile id in the list (follows Klaviyo's page cursor)."""
        members: set[str] = set()
        cursor: str | None = None
        while True:
            answer = self._client.send(kr.list_member_ids(list_id, cursor)).json()
            members |= {str(item.get("id")) for item in answer.get("data") or []}
            following = (answer.get("links") or {}).get("next")
            cursor = parse_qs(urlsplit(following).query).get("page[cursor]", [None])[0] if following else None
            if not cursor:
                return members
