"""Scheduled or console sweep: re-evaluate due profiles (or all, or some segments, or a dry run)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from evergreen.observability import make_tracer, record_transitions
from evergreen.service.sweep import SweepReport, SweepRequest
from evergreen.wiring import Edges

logger = Logger()
tracer = make_tracer()
metrics = Metrics()

edges = Edges.from_env()
sweep = edges.sweep


def request_from(event: dict[str, Any]) -> SweepRequest:
    """A scheduled EventBridge event asks for the default; a console test event names its mode."""
    if event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event":
        return SweepRequest()
    return SweepRequest.model_validate(event)


def publish_metrics(report: SweepReport) -> None:
    for name, value in (
        ("SweepDue", report.due),
        ("SweepRead", report.read),
        ("SweepEvaluated", report.evaluated),
        ("SweepEnqueued", report.enqueued),
        ("SweepRepaired", report.repaired),
        ("SweepConflicts", report.conflicts),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(name="SweepOldestOverdueSeconds", unit=MetricUnit.Seconds, value=report.oldest_overdue_seconds)
    metrics.add_metric(name="SweepDurationMs", unit=MetricUnit.Milliseconds, value=report.duration_ms)
    if not report.dry_run:
        record_transitions(metrics, report.entered, report.exited)
    if report.list_move is not None and not report.dry_run:
        move = report.list_move
        metrics.add_metric(name="ListMoveMembersEnqueued", unit=MetricUnit.Count, value=sum(move.members.values()))
        metrics.add_metric(name="ListMoveComplete", unit=MetricUnit.Count, value=int(move.complete))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = request_from(event)
    except ValidationError as error:
        logger.error("Unknown sweep request", extra={"errors": error.errors(include_url=False)})
        return {
            "error": 'expected {} or {"dry_run": true} or {"segments": [...]} or {"full": true}'
            ' (or {"full": true, "group": n}, which the sweep sends itself)'
        }
    safety_ms = edges.settings.sweep_safety_ms
    report = sweep.run(request, time_left=lambda: context.get_remaining_time_in_millis() > safety_ms)
    publish_metrics(report)
    result = report.as_dict()
    logger.info("Sweep finished", extra={"report": result})
    return result
