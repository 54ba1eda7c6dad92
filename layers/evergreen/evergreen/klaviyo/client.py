"""HTTP transport to Klaviyo: auth and revision headers, per-endpoint rate limits, retries.

- Each endpoint (operationId) gets a token bucket for its documented burst (per second) and steady
  (per minute) limits, so one container does not trip Klaviyo's limits by itself.
- 429: wait for `Retry-After` (seconds) plus jitter, up to `max_attempts`; a wait longer than
  `max_retry_after_s` is not slept through (the message goes back to the queue instead).
- 5xx and transport errors: exponential back-off with jitter, up to `max_attempts`.
- A 403 that is not JSON:API (Cloudflare's HTML challenge page in front of Klaviyo) is an edge block, not
  Klaviyo refusing the key: retried like a 5xx, and `KlaviyoUnavailable` once the retries run out.
- Other 4xx: no retry; `KlaviyoRejected` with the status and Klaviyo's error codes (PII redacted).

Every call sync makes is idempotent (profile upserts, events with `unique_id`, list membership), so a
retry after an ambiguous failure is safe.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import httpx

from evergreen.klaviyo.errors import (
    KlaviyoErrorInfo,
    KlaviyoRejected,
    KlaviyoThrottled,
    KlaviyoUnavailable,
)
from evergreen.klaviyo.requests import RATE_LIMITS, KlaviyoRequest, RateLimit, get_profile
from evergreen.settings import KLAVIYO_REVISION

JSON_API = "application/vnd.api+json"
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
UNKNOWN_ENDPOINT_LIMIT = RateLimit(10, 150)
"""Klaviyo's most conservative published tier, for an operation missing from RATE_LIMITS."""
_EMAIL = re.compile(r"[^\s@'\"<>]+@[^\s@'\"<>]+")
_PHONE = re.compile(r"\+?\d[\d\s\-().]{6,}\d")


def is_edge_block(response: httpx.Response) -> bool:
    """A 403 that Klaviyo's API did not write: an HTML challenge page (Cloudflare) rather than JSON:API errors.

    Klaviyo's own 403 (a key without the scope, a revoked key) is JSON:API with an `errors` array and is final.
    """
    if response.status_code != 403:
        return False
    content_type = response.headers.get("content-type", "").lower()
    if "json" in content_type:
        return not error_infos(response)
    return True


def redact(text: str | None) -> str | None:
    """Drop anything that looks like an email or a phone number from Klaviyo's error text."""
    if text is None:
        return None
    return _PHONE.sub("<phone>", _EMAIL.sub("<email>", text))


def error_infos(response: httpx.Response) -> tuple[KlaviyoErrorInfo, ...]:
    """The JSON:API errors of a response, redacted; empty when the body is not JSON:API."""
    try:
        body = response.json()
    except ValueError:
        return ()
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return ()
    infos: list[KlaviyoErrorInfo] = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        source = error.get("source")
        pointer = source.get("pointer") if isinstance(source, dict) else None
        meta = error.get("meta")
        infos.append(
            KlaviyoErrorInfo(
                code=_str_or_none(error.get("code")),
                title=redact(_str_or_none(error.get("title"))),
                detail=redact(_str_or_none(error.get("detail"))),
                pointer=_str_or_none(pointer),
                meta=meta if isinstance(meta, dict) else {},
            )
        )
    return tuple(infos)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """`Retry-After` as seconds (Klaviyo sends an integer); None when absent or not a number."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


_TOKEN_EPSILON = 1e-9
_MIN_WAIT_S = 1e-6


class TokenBucket:
    """A bucket of `capacity` tokens refilled at `rate_per_s`; time comes from an injected clock."""

    def __init__(self, capacity: float, rate_per_s: float, now: float) -> None:
        self.capacity = capacity
        self.rate_per_s = rate_per_s
        self.tokens = capacity
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.updated = now

    def wait_for_token(self) -> float:
        """Seconds until one token is available (0 when one is there now, give or take float error)."""
        missing = 1 - self.tokens
        return 0.0 if missing <= _TOKEN_EPSILON else max(missing / self.rate_per_s, _MIN_WAIT_S)


class RateLimiter:
    """Burst and steady token buckets per operation; `acquire` sleeps until both allow a call.

    Thread-safe: the pusher's concurrent calls take their tokens from the same buckets.
    """

    def __init__(
        self,
        limits: Mapping[str, RateLimit],
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        default: RateLimit = UNKNOWN_ENDPOINT_LIMIT,
    ) -> None:
        self._limits = limits
        self._default = default
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, tuple[TokenBucket, TokenBucket]] = {}
        self._lock = threading.Lock()
        self.waited_s = 0.0
        """Total time spent waiting for tokens (for metrics)."""

    def _buckets_for(self, operation: str) -> tuple[TokenBucket, TokenBucket]:
        if operation not in self._buckets:
            limit = self._limits.get(operation, self._default)
            now = self._clock()
            self._buckets[operation] = (
                TokenBucket(limit.burst_per_second, limit.burst_per_second, now),
                TokenBucket(limit.steady_per_minute, limit.steady_per_minute / 60.0, now),
            )
        return self._buckets[operation]

    def acquire(self, operation: str) -> None:
        while True:
            with self._lock:
                buckets = self._buckets_for(operation)
                now = self._clock()
                for bucket in buckets:
                    bucket.refill(now)
                wait = max(bucket.wait_for_token() for bucket in buckets)
                if wait <= 0:
                    for bucket in buckets:
                        bucket.tokens -= 1
                    return
                self.waited_s += wait
            self._sleep(wait)


class SharedBudget(Protocol):
    """The account's rate budget shared by every container (storage/rate_budget.py keeps it in DynamoDB)."""

    def take(self, operation: str, limit: RateLimit) -> float:
        """Take one call's token: 0.0 when taken, else the seconds to wait before asking again."""
        ...


def default_jitter(base_s: float) -> float:
    """Up to a quarter of the base delay extra, so many containers do not retry in lock-step."""
    return random.uniform(0, base_s * 0.25)


class KlaviyoClient:
    """Sends `KlaviyoRequest`s to Klaviyo. Create one per process and reuse it (it pools connections)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        revision: str = KLAVIYO_REVISION,
        http: httpx.Client | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[float], float] = default_jitter,
        rate_limits: Mapping[str, RateLimit] = RATE_LIMITS,
        max_attempts: int = 5,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 8.0,
        max_retry_after_s: float = 30.0,
        shared_budget: SharedBudget | None = None,
    ) -> None:
        """`shared_budget`: besides this process's own buckets, every call takes a token from the account's
        budget shared with the other containers, so together they stay inside Klaviyo's per-account limits."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._base_url = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Klaviyo-API-Key {api_key}",
            "revision": revision,
            "accept": JSON_API,
            "user-agent": "evergreen-sync",
        }
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=DEFAULT_TIMEOUT)
        self._sleep = sleep
        self._jitter = jitter
        self._max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._max_retry_after_s = max_retry_after_s
        self.limiter = RateLimiter(rate_limits, clock=clock, sleep=sleep)
        self._rate_limits = rate_limits
        self._shared = shared_budget
        self.throttled_count = 0
        """429 answers seen (each attempt counts), for the "Klaviyo 429s" metric."""
        self.retried_count = 0
        """Retries made for any reason."""
        self._counts = threading.Lock()
        self.shared_waited_s = 0.0
        """Time spent waiting for the account's shared budget."""

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> KlaviyoClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _backoff(self, attempt: int) -> float:
        return float(min(self._backoff_cap_s, self._backoff_base_s * (2 ** (attempt - 1))))

    def _wait(self, base_s: float) -> None:
        with self._counts:
            self.retried_count += 1
        self._sleep(base_s + max(0.0, self._jitter(base_s)))

    def send(self, request: KlaviyoRequest) -> httpx.Response:
        """Send with rate limiting and bounded retries; return the 2xx response or raise `KlaviyoError`."""
        operation = request.operation or f"{request.method} {request.path}"
        headers = dict(self._headers)
        content = request.body_bytes()
        if content is not None:
            headers["content-type"] = JSON_API
        url = self._base_url + request.path
        for attempt in range(1, self._max_attempts + 1):
            last = attempt == self._max_attempts
            self.limiter.acquire(operation)
            self._take_shared(operation)
            try:
                response = self._http.request(
                    request.method, url, params=dict(request.query), headers=headers, content=content
                )
            except httpx.TransportError as error:
                if last:
                    raise KlaviyoUnavailable(
                        f"Klaviyo {operation} failed: {type(error).__name__}", operation=operation
                    ) from error
                self._wait(self._backoff(attempt))
                continue
            status = response.status_code
            if 200 <= status < 300:
                return response
            if status == 429:
                with self._counts:
                    self.throttled_count += 1
                retry_after = retry_after_seconds(response)
                wait = retry_after if retry_after is not None else self._backoff(attempt)
                if last or wait > self._max_retry_after_s:
                    raise KlaviyoThrottled(operation=operation, retry_after_s=retry_after)
                self._wait(wait)
                continue
            if status >= 500 or is_edge_block(response):
                if last:
                    raise KlaviyoUnavailable(
                        f"Klaviyo {operation} failed with {status}", operation=operation, status=status
                    )
                self._wait(self._backoff(attempt))
                continue
            raise KlaviyoRejected(operation=operation, status=status, errors=error_infos(response))
        raise AssertionError("unreachable")  # pragma: no cover

    def _take_shared(self, operation: str) -> None:
        """Wait for the account's shared budget to grant this call (nothing to do without one)."""
        if self._shared is None:
            return
        limit = self._rate_limits.get(operation, UNKNOWN_ENDPOINT_LIMIT)
        while (wait := self._shared.take(operation, limit)) > 0:
            with self._counts:
                self.shared_waited_s += wait
            self._sleep(wait)

    def get_profile(self, klaviyo_profile_id: str) -> dict[str, Any] | None:
        """The JSON:API profile resource (`id`, `attributes.external_id/email/phone_number`), or None on 404.

        Goes through `send`, so the per-endpoint rate limiter and retries apply.
        """
        try:
            response = self.send(get_profile(klaviyo_profile_id))
        except KlaviyoRejected as error:
            if error.status == 404:
                return None
            raise
        try:
            body = response.json()
        except ValueError:
            return None
        data = body.get("data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else None


class ConcurrentCalls:
    """The pusher's `Fanout` over one thread pool per process: at most `workers` Klaviyo calls in flight.

    The calls share the client's rate limiter (thread-safe) and its pooled HTTP connections.
    """

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="klaviyo-call")

    def __call__[T, R](self, work: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) <= 1:
            return [work(item) for item in items]
        return list(self._pool.map(work, items))
