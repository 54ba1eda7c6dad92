"""A Shopify bulk operation and what an Admin API call can fail with: the types the backfill use case sees.

The Admin API client (`shopify/admin.py`, over httpx) returns and raises these; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FINISHED = frozenset({"COMPLETED", "FAILED", "CANCELED", "EXPIRED"})


class AdminError(Exception):
    """A Shopify Admin call that did not succeed. Messages never carry the token or customer data."""

    exit_code = 1


class TokenRevoked(AdminError):
    """401: the access token is wrong, or the app was uninstalled and the token revoked."""

    exit_code = 3


class ShopNotFound(AdminError):
    """404: no shop answers at that domain (a mistyped or closed shop); running again changes nothing."""

    exit_code = 2


class AccessDenied(AdminError):
    """403 / ACCESS_DENIED: the token lacks a scope the backfill needs."""

    exit_code = 3


class Throttled(AdminError):
    """Still throttled (THROTTLED cost error or 429) after the bounded retries."""

    exit_code = 4


class BulkOperationFailed(AdminError):
    """The bulk operation ended FAILED, CANCELED or EXPIRED; run the backfill again to start a new one."""

    exit_code = 5


class ResultUrlExpired(AdminError):
    """The result URL no longer answers (it lives 7 days); the backfill starts a new operation."""

    exit_code = 6


class GraphQLError(AdminError):
    """Shopify answered the request with GraphQL errors (a bug in the query, not a transient state)."""


@dataclass(frozen=True)
class BulkOperation:
    id: str
    status: str
    error_code: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    url: str | None = None
    partial_data_url: str | None = None
    file_size: int | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BulkOperation:
        def count(name: str) -> int:
            value = data.get(name)
            return int(value) if value is not None else 0

        size = data.get("fileSize")
        return cls(
            id=str(data["id"]),
            status=str(data.get("status") or "CREATED"),
            error_code=data.get("errorCode"),
            object_count=count("objectCount"),
            root_object_count=count("rootObjectCount"),
            url=data.get("url"),
            partial_data_url=data.get("partialDataUrl"),
            file_size=int(size) if size is not None else None,
        )
