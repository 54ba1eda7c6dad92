"""SQS segment-changes -> Klaviyo: newest snapshot per profile, batched, partial failures reported.

A failed message is postponed by its own back-off (ChangeMessageVisibility) rather than burning receives;
poison (a 4xx Klaviyo will always refuse, an unreadable body) goes to the DLQ at once.
"""

from __future__ import annotations

import random
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from evergreen.observability import make_tracer
from evergreen.service.ports import Received
from evergreen.service.sync import RETRY_JITTER, plan_redelivery, read_queue_message
from evergreen.wiring import Edges

logger = Logger()
tracer = make_tracer()
metrics = Metrics()
# Every record of a batch failing (a Klaviyo outage) is an expected outcome, reported as failed items,
# not a Lambda error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

edges = Edges.from_env()
sync = edges.segment_sync


def _receive_count(record: SQSRecord) -> int:
    try:
        return int(record.attributes.approximate_receive_count)
    except (TypeError, ValueError):
        return 1


@tracer.capture_method
def sync_batch(records: list[SQSRecord]) -> set[str]:
    """Push the batch, postpone or dead-letter what failed; returns the message ids to report as failed."""
    read = [(record, read_queue_message(record.body)) for record in records]
    messages = [message for _, message in read if message is not None]
    handled = [record for record, message in read if message is not None]
    unreadable = [record for record, message in read if message is None]
    for record in unreadable:
        logger.error("Unreadable queue message; dead-lettered", extra={"message_id": record.message_id})
    throttled_before = edges.klaviyo_throttled()
    report = sync.handle(messages)
    throttled = edges.klaviyo_throttled() - throttled_before
    plan = plan_redelivery(report, [_receive_count(r) for r in handled], lambda: random.uniform(0, RETRY_JITTER))

    poison = [_received(r) for r in unreadable] + [_received(handled[i]) for i in plan.poison]
    reasons = {r.message_id: "unreadable" for r in unreadable} | {
        handled[i].message_id: reason for i, reason in plan.poison.items()
    }
    retry = {handled[i].message_id for i in plan.delays_s}
    try:
        retry |= edges.redelivery.dead_letter(poison, reasons)
    except Exception:
        logger.exception("Could not dead-letter poison; left to the queue's redrive policy")
        retry |= {message.message_id for message in poison}
    try:
        edges.redelivery.postpone(
            [_received(handled[i]) for i in plan.delays_s],
            {handled[i].message_id: delay for i, delay in plan.delays_s.items()},
        )
    except Exception:
        logger.exception("Could not postpone failed messages; they return after the queue's VisibilityTimeout")

    metrics.add_metric(name="ChangesSynced", unit=MetricUnit.Count, value=report.pushed)
    metrics.add_metric(name="ChangesSkippedStale", unit=MetricUnit.Count, value=report.stale + report.gone)
    metrics.add_metric(name="SyncFailures", unit=MetricUnit.Count, value=len(report.failed) + len(unreadable))
    metrics.add_metric(name="SyncDeadLettered", unit=MetricUnit.Count, value=len(poison))
    metrics.add_metric(name="ProfilesErased", unit=MetricUnit.Count, value=report.erased)
    metrics.add_metric(name="ListMoveMembersSynced", unit=MetricUnit.Count, value=report.list_members_moved)
    metrics.add_metric(name="Klaviyo429s", unit=MetricUnit.Count, value=throttled)
    if report.lag_seconds:
        metrics.add_metric(name="SyncLagSeconds", unit=MetricUnit.Seconds, value=max(report.lag_seconds))
    for latency_ms in report.event_to_klaviyo_ms:  # one value each, for p50/p99 (Powertools flushes at 100)
        metrics.add_metric(name="EventToKlaviyoMs", unit=MetricUnit.Milliseconds, value=latency_ms)
    logger.info(
        "Batch synced",
        extra={
            "received": len(records),
            "pushed": report.pushed,
            "stale": report.stale,
            "gone": report.gone,
            "erased": report.erased,
            "list_members_moved": report.list_members_moved,
            "postponed": len(plan.delays_s),
            "longest_postpone_s": max(plan.delays_s.values(), default=0),
            "dead_lettered": len(poison),
            "failed": len(retry),
        },
    )
    return retry


def _received(record: SQSRecord) -> Received:
    return Received(record.message_id, record.receipt_handle, record.body)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    retry = sync_batch([SQSRecord(record) for record in event.get("Records", [])])

    def report_record(record: SQSRecord) -> None:
        if record.message_id in retry:
            raise RuntimeError("segment change not yet synced")

    return process_partial_response(event=event, record_handler=report_record, processor=processor, context=context)
