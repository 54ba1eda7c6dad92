"""Console-started backfill of one shop: Shopify history, then Klaviyo engagement history, then bulk sync.

Runs until 60 s before Lambda's limit, checkpoints (Shopify: in the table; engagement: metric and page
cursor in the request), and re-invokes itself asynchronously to continue; a large store takes as many
invocations as it needs.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from evergreen.backfill_wiring import (
    STOPS_BACKFILL,
    BackfillRequest,
    build_backfill,
    build_engagement_history,
    klaviyo_sender,
    shopify_admin,
)
from evergreen.observability import make_tracer
from evergreen.wiring import Edges

logger = Logger()
tracer = make_tracer()
metrics = Metrics()

edges = Edges.from_env()
SAFETY_MS = 60_000
WORKERS = 16
"""Records applied at a time: DynamoDB round trips, not CPU, bound a backfill."""


def continue_later(request: BackfillRequest, context: LambdaContext, **update: Any) -> dict[str, Any] | None:
    """Invoke this function again with the request moved on; an error answer when the budget is spent."""
    if request.continuation >= request.max_continuations:
        logger.error("Backfill gave up re-invoking itself", extra={"continuation": request.continuation})
        return {"shop": request.shop, "finished": False, "error": "max_continuations reached"}
    following = request.model_copy(update={**update, "continuation": request.continuation + 1})
    edges.lambda_client.invoke(
        FunctionName=context.invoked_function_arn,
        InvocationType="Event",
        Payload=json.dumps(following.model_dump(mode="json")).encode(),
    )
    return None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = BackfillRequest.model_validate(event)
    except ValidationError as error:
        logger.error("Unknown backfill request", extra={"errors": error.errors(include_url=False)})
        return {"error": 'expected {"shop": "<shop>.myshopify.com"} (see events/backfill/)'}
    logger.append_keys(shop=request.shop, continuation=request.continuation, stage=request.stage)

    def time_is_up() -> bool:
        return context.get_remaining_time_in_millis() < SAFETY_MS

    sender = klaviyo_sender(edges, request.shop)
    result: dict[str, Any] = {"shop": request.shop, "stage": request.stage}
    try:
        if request.stage == "shopify":
            with shopify_admin(edges, request.shop) as admin:
                backfill = build_backfill(
                    edges,
                    admin,
                    sender,
                    fire_segment_events=request.entered_events,
                    should_stop=time_is_up,
                    workers=WORKERS,
                )
                report = backfill.run(request.shop, request.since_instant)
            if admin.deprecations:
                value = sum(admin.deprecations.values())
                metrics.add_metric(name="ShopifyApiDeprecations", unit=MetricUnit.Count, value=value)
            metrics.add_metric(name="BackfillRecordsApplied", unit=MetricUnit.Count, value=report.counts.applied)
            result |= report.counts.model_dump()
            if report.orders_from is not None:  # no read_all_orders: Shopify served only recent orders
                result["orders_read_from"] = report.orders_from.isoformat()
            if not report.finished:
                logger.info("Backfill continues in a new invocation", extra=report.counts.model_dump())
                return continue_later(request, context) or {**result, "finished": False, "continued": True}
        if sender is not None and request.engagement_days > 0:
            start = (request.history_metric, request.history_cursor) if request.history_metric else None
            history = build_engagement_history(
                edges, sender, window_days=request.engagement_days, fire_segment_events=request.entered_events
            ).run(request.shop, start=start, should_stop=time_is_up)
            result |= {"engagement_events": history.events, "engagement_applied": history.applied}
            if history.resume_at is not None:
                metric, cursor = history.resume_at
                update = {"stage": "engagement", "history_metric": metric, "history_cursor": cursor}
                return continue_later(request, context, **update) or {**result, "finished": False, "continued": True}
    except STOPS_BACKFILL as error:
        logger.error("Backfill stopped", extra={"reason": str(error), "error": type(error).__name__})
        return {**result, "error": str(error), "resume": "start it again with the same event"}
    logger.info("Backfill finished", extra=result)
    return {**result, "finished": True}
