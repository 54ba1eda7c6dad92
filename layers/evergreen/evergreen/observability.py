"""Metrics shared by the functions: names and dimensions in one place."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

NAMESPACE_DEFAULT = "Evergreen"


def record_transitions(
    metrics: Metrics, entered: Mapping[str, int] | Iterable[str], exited: Mapping[str, int] | Iterable[str]
) -> None:
    """One metric per segment and direction, each with its own `segment` dimension."""
    for direction, segments in (("SegmentEntered", entered), ("SegmentExited", exited)):
        counts = segments if isinstance(segments, Mapping) else Counter(segments)
        for segment, count in counts.items():
            record_count(metrics, direction, "segment", segment, count)


def record_count(metrics: Metrics, name: str, dimension: str, value: str, count: float = 1) -> None:
    """A count with one dimension of its own, apart from the function's shared dimensions."""
    namespace = metrics.namespace or NAMESPACE_DEFAULT
    with single_metric(name=name, unit=MetricUnit.Count, value=count, namespace=namespace) as metric:
        metric.add_dimension(dimension, value)
