"""SQS segment-changes -> Klaviyo: newest snapshot per profile, batched, partial failures reported.

A full event-source batch means a backlog: the invocation then drains more of the queue itself and pushes it
all as one batch (bulk import jobs). A failed message is postponed by its own back-off (ChangeMessageVisibility)
rather than burning receives; poison (a 4xx Klaviyo will always refuse, an unreadable body) goes to the DLQ at
once. See evergreen/service/sync_drain.py.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from evergreen.observability import make_tracer, record_segment_members
from evergreen.service.ports import Received
from evergreen.service.sync_drain import DrainOutcome
from evergreen.wiring import Edges

logger = Logger()
tracer = make_tracer()
metrics = Metrics()
# Every record of a batch failing (a Klaviyo outage) is an expected outcome, reported as failed items,
# not a Lambda error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

edges = Edges.from_env()
edges.segment_sync  # noqa: B018 - built at init (DynamoDB, httpx); SQS is created by the first batch


def _received(record: SQSRecord) -> Received:
    try:
        receive_count = int(record.attributes.approximate_receive_count)
    except (TypeError, ValueError):
        receive_count = 1
    return Received(record.message_id, record.receipt_handle, record.body, receive_count)


@tracer.capture_method
def sync_batch(records: list[SQSRecord], context: LambdaContext) -> set[str]:
    """Sync the batch (and any backlog it drains); returns the event-source message ids to report as failed."""
    throttled_before = edges.klaviyo_throttled()
    outcome = edges.draining_sync.run([_received(record) for record in records], context.get_remaining_time_in_millis)
    _record_metrics(outcome, edges.klaviyo_throttled() - throttled_before)
    report = outcome.report
    for shop in sorted(report.shops):
        totals = edges.store.segment_counts.totals(shop)
        members = {name: totals[name].members if name in totals else 0 for name in edges.definitions.names}
        record_segment_members(metrics, shop, members)
    logger.info(
        "Batch synced",
        extra={
            "received": outcome.received,
            "drained": outcome.drained,
            "pushed": report.pushed,
            "stale": report.stale,
            "gone": report.gone,
            "erased": report.erased,
            "list_members_moved": report.list_members_moved,
            "postponed": len(outcome.delays_s),
            "longest_postpone_s": max(outcome.delays_s.values(), default=0),
            "dead_lettered": outcome.dead_lettered,
            "failed": len(outcome.retry),
            "drained_not_deleted": outcome.not_deleted,
        },
    )
    return outcome.retry


def _record_metrics(outcome: DrainOutcome, throttled: int) -> None:
    report = outcome.report
    metrics.add_metric(name="ChangesSynced", unit=MetricUnit.Count, value=report.pushed)
    metrics.add_metric(name="ChangesDrained", unit=MetricUnit.Count, value=outcome.drained)
    metrics.add_metric(name="ChangesSkippedStale", unit=MetricUnit.Count, value=report.stale + report.gone)
    metrics.add_metric(name="SyncFailures", unit=MetricUnit.Count, value=len(report.failed) + outcome.unreadable)
    metrics.add_metric(name="SyncDeadLettered", unit=MetricUnit.Count, value=outcome.dead_lettered)
    metrics.add_metric(name="ProfilesErased", unit=MetricUnit.Count, value=report.erased)
    metrics.add_metric(name="ListMoveMembersSynced", unit=MetricUnit.Count, value=report.list_members_moved)
    metrics.add_metric(name="Klaviyo429s", unit=MetricUnit.Count, value=throttled)
    if report.lag_seconds:
        metrics.add_metric(name="SyncLagSeconds", unit=MetricUnit.Seconds, value=max(report.lag_seconds))
    metrics.add_metric(name="KlaviyoProfilesRefused", unit=MetricUnit.Count, value=report.profiles_refused)
    metrics.add_metric(name="PhonesLeftOut", unit=MetricUnit.Count, value=report.phones_left_out)
    metrics.add_metric(name="KlaviyoJobsUnfinished", unit=MetricUnit.Count, value=report.jobs_unfinished)
    for latency_ms in report.event_to_klaviyo_ms:  # one value each, for p50/p99 (Powertools flushes at 100)
        metrics.add_metric(name="EventToKlaviyoMs", unit=MetricUnit.Milliseconds, value=latency_ms)
    for accepted_ms in report.event_to_klaviyo_accepted_ms:
        metrics.add_metric(name="EventToKlaviyoAcceptedMs", unit=MetricUnit.Milliseconds, value=accepted_ms)
    for lateness_ms in report.transition_lateness_ms:
        metrics.add_metric(name="TransitionLatenessMs", unit=MetricUnit.Milliseconds, value=lateness_ms)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    retry = sync_batch([SQSRecord(record) for record in event.get("Records", [])], context)

    def report_record(record: SQSRecord) -> None:
        if record.message_id in retry:
            raise RuntimeError("segment change not yet synced")

    return process_partial_response(event=event, record_handler=report_record, processor=processor, context=context)
