"""Scheduled engagement poll: every Klaviyo account's new engagement events, applied as webhook deliveries are."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from evergreen.observability import make_tracer, record_transitions
from evergreen.service.engagement_poll import PollReport
from evergreen.wiring import Edges

logger = Logger()
tracer = make_tracer()
metrics = Metrics()

edges = Edges.from_env()
poll = edges.engagement_poll


def publish_metrics(report: PollReport) -> None:
    metrics.add_metric(name="EngagementPollLagSeconds", unit=MetricUnit.Seconds, value=report.max_lag_seconds)
    metrics.add_metric(name="EngagementPollEventsRead", unit=MetricUnit.Count, value=report.total("events"))
    metrics.add_metric(name="EngagementPollEventsApplied", unit=MetricUnit.Count, value=report.total("applied"))
    metrics.add_metric(name="EngagementPollRequests", unit=MetricUnit.Count, value=report.total("requests"))
    metrics.add_metric(name="EngagementPollAccountFailures", unit=MetricUnit.Count, value=len(report.failures))
    entered = [segment for account in report.accounts for segment in account.entered]
    exited = [segment for account in report.accounts for segment in account.exited]
    record_transitions(metrics, entered, exited)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    safety_ms = edges.settings.engagement_poll_safety_ms
    report = poll.run(should_stop=lambda: context.get_remaining_time_in_millis() < safety_ms)
    publish_metrics(report)
    result = report.as_dict()
    logger.info("Engagement poll finished", extra={"report": result})
    return result
