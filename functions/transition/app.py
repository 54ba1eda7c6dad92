"""SQS transitions, each delayed to its profile's exact instant -> re-evaluate, write, enqueue the change."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from evergreen.observability import make_tracer, record_transitions
from evergreen.service.transitions import DueTransition, TransitionOutcome
from evergreen.wiring import Edges

logger = Logger()
tracer = make_tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

OUTCOME_METRICS = {
    TransitionOutcome.APPLIED: "TransitionsApplied",
    TransitionOutcome.NOT_DUE: "TransitionsMovedSinceScheduled",
    TransitionOutcome.GONE: "TransitionsProfileGone",
    TransitionOutcome.RESCHEDULED: "TransitionsRescheduled",
}

edges = Edges.from_env()
transitions = edges.transitions


def apply_record(record: SQSRecord) -> None:
    """One delayed transition; an unreadable body or a storage error raises, so SQS retries it (then the DLQ)."""
    due = DueTransition.model_validate_json(record.body)
    result = transitions.apply(due)
    metrics.add_metric(name=OUTCOME_METRICS[result.outcome], unit=MetricUnit.Count, value=1)
    if result.outcome is TransitionOutcome.APPLIED and result.lateness_ms is not None:
        metrics.add_metric(name="TransitionAppliedLatenessMs", unit=MetricUnit.Milliseconds, value=result.lateness_ms)
        record_transitions(metrics, result.entered, result.exited)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=apply_record, processor=processor, context=context)
