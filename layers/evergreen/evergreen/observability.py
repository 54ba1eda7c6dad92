"""Tracing and metrics shared by the functions: the tracer factory, metric names and dimensions in one place."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

from aws_lambda_powertools import Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from evergreen.api_versions import is_version_drift
from evergreen.settings import SHOPIFY_API_VERSION

NAMESPACE_DEFAULT = "Evergreen"
TRACE_DISABLED_ENV = "POWERTOOLS_TRACE_DISABLED"
_TRUTHY = {"1", "true", "yes", "y", "on"}

F = TypeVar("F", bound=Callable[..., Any])


class NoTracer:
    """Tracing off: the decorators return the function itself and nothing of X-Ray is imported."""

    disabled = True

    @overload
    def capture_lambda_handler(self, lambda_handler: F) -> F: ...

    @overload
    def capture_lambda_handler(
        self, lambda_handler: None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> Callable[[F], F]: ...

    def capture_lambda_handler(
        self, lambda_handler: F | None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> F | Callable[[F], F]:
        return lambda_handler if lambda_handler is not None else _unchanged

    @overload
    def capture_method(self, method: F) -> F: ...

    @overload
    def capture_method(
        self, method: None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> Callable[[F], F]: ...

    def capture_method(
        self, method: F | None = None, capture_response: bool | None = None, capture_error: bool | None = None
    ) -> F | Callable[[F], F]:
        return method if method is not None else _unchanged

    def put_annotation(self, key: str, value: str | float | bool) -> None:
        """Nothing to annotate."""

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        """Nothing to record."""


def _unchanged[G: Callable[..., Any]](function: G) -> G:
    return function


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Tracing is on unless POWERTOOLS_TRACE_DISABLED is truthy (the template's `Tracing` parameter sets it)."""
    environment = os.environ if environ is None else environ
    return environment.get(TRACE_DISABLED_ENV, "false").strip().lower() not in _TRUTHY


def make_tracer(environ: Mapping[str, str] | None = None) -> Tracer | NoTracer:
    """Powertools' Tracer when tracing is on; otherwise a `NoTracer`, so the X-Ray SDK is never imported.

    Powertools' own `Tracer(disabled=True)` still imports the X-Ray SDK and patches botocore and httpx, which
    costs about a third of a second of cold start for nothing.
    """
    if not tracing_enabled(environ):
        return NoTracer()
    return Tracer()


def record_transitions(
    metrics: Metrics, entered: Mapping[str, int] | Iterable[str], exited: Mapping[str, int] | Iterable[str]
) -> None:
    """One metric per segment and direction, each with its own `segment` dimension."""
    for direction, segments in (("SegmentEntered", entered), ("SegmentExited", exited)):
        counts = segments if isinstance(segments, Mapping) else Counter(segments)
        for segment, count in counts.items():
            record_count(metrics, direction, "segment", segment, count)


def record_segment_members(metrics: Metrics, shop: str, members: Mapping[str, int]) -> None:
    """`SegmentMembers` per segment of a shop: the exact member count (a gauge, drawn with Maximum)."""
    namespace = metrics.namespace or NAMESPACE_DEFAULT
    for segment, count in members.items():
        with single_metric(name="SegmentMembers", unit=MetricUnit.Count, value=count, namespace=namespace) as metric:
            metric.add_dimension("shop", shop)
            metric.add_dimension("segment", segment)


def record_count(metrics: Metrics, name: str, dimension: str, value: str, count: float = 1) -> None:
    """A count with one dimension of its own, apart from the function's shared dimensions."""
    namespace = metrics.namespace or NAMESPACE_DEFAULT
    with single_metric(name=name, unit=MetricUnit.Count, value=count, namespace=namespace) as metric:
        metric.add_dimension(dimension, value)


WEBHOOK_UNAVAILABLE = "WebhookUnavailable"
"""Counted on every 503 a webhook handler answers (storage failing, races exhausted): the sender retries, so
Lambda's `Errors` stays at 0 and only this metric (and its alarm, `WebhookUnavailableAlarm`) shows it."""


def record_unavailable(metrics: Metrics) -> None:
    """One 503 answered, under the function's shared dimensions only (the alarm watches exactly those)."""
    metrics.add_metric(name=WEBHOOK_UNAVAILABLE, unit=MetricUnit.Count, value=1)


def record_api_version(metrics: Metrics, delivered: str | None, pinned: str = SHOPIFY_API_VERSION) -> bool:
    """The API version a webhook was delivered at (`WebhookApiVersion`, dimension `api_version`); a version other
    than the pin also moves `ShopifyApiVersionMismatch` (service dimension only: its alarm's). True on drift."""
    record_count(metrics, "WebhookApiVersion", "api_version", delivered or "unstated")
    if not is_version_drift(delivered, pinned):
        return False
    namespace = metrics.namespace or NAMESPACE_DEFAULT
    with single_metric(name="ShopifyApiVersionMismatch", unit=MetricUnit.Count, value=1, namespace=namespace):
        pass
    return True
