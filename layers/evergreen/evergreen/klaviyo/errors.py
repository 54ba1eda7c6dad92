"""What a Klaviyo call can fail with: the exceptions the use cases catch, raised by the HTTP client (no httpx here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["KlaviyoError", "KlaviyoErrorInfo", "KlaviyoRejected", "KlaviyoThrottled", "KlaviyoUnavailable"]


class KlaviyoError(Exception):
    """A Klaviyo call that did not succeed. Messages never carry PII."""

    def __init__(self, message: str, *, operation: str, status: int | None = None) -> None:
        super().__init__(message)
        self.operation = operation
        self.status = status


@dataclass(frozen=True)
class KlaviyoErrorInfo:
    """One entry of a JSON:API `errors` array, with emails and phone numbers redacted."""

    code: str | None
    title: str | None
    detail: str | None
    pointer: str | None
    meta: Mapping[str, Any]


class KlaviyoRejected(KlaviyoError):
    """A 4xx (other than 429): the request itself is wrong or refused. Retrying will not help."""

    def __init__(self, *, operation: str, status: int, errors: tuple[KlaviyoErrorInfo, ...]) -> None:
        summary = "; ".join(" ".join(part for part in (e.code, e.pointer, e.detail or e.title) if part) for e in errors)
        super().__init__(
            f"Klaviyo rejected {operation} with {status}" + (f": {summary}" if summary else ""),
            operation=operation,
            status=status,
        )
        self.errors = errors


class KlaviyoThrottled(KlaviyoError):
    """Still 429 after the bounded retries, or Klaviyo asked for a longer wait than we sleep through."""

    def __init__(self, *, operation: str, retry_after_s: float | None) -> None:
        super().__init__(
            f"Klaviyo throttled {operation} (retry after {retry_after_s}s)", operation=operation, status=429
        )
        self.retry_after_s = retry_after_s


class KlaviyoUnavailable(KlaviyoError):
    """Still 5xx, a transport error or an edge (non-JSON:API) 403 after the bounded retries."""
