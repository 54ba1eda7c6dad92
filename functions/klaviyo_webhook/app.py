"""POST /webhooks/klaviyo: Klaviyo engagement (opens, clicks, bounces, unsubscribes) onto profiles."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from evergreen.http_events import BadRequestBody, json_response, raw_body
from evergreen.observability import make_tracer, record_transitions, record_unavailable
from evergreen.wiring import Edges

logger = Logger()
tracer = make_tracer()
metrics = Metrics()

edges = Edges.from_env()
webhooks = edges.klaviyo_webhooks


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=APIGatewayProxyEventV2)
def lambda_handler(event: APIGatewayProxyEventV2, context: LambdaContext) -> dict[str, Any]:
    shop = event.get_query_string_value("shop")
    try:
        body = raw_body(event)
    except BadRequestBody as error:
        return json_response(400, {"error": "malformed request", "reason": str(error)})
    try:
        answer = webhooks.receive(body, dict(event.headers), shop)
    except Exception:
        logger.exception("Klaviyo webhook failed; Klaviyo will retry")
        record_unavailable(metrics)
        return json_response(503, {"error": "try again later"})
    metrics.add_dimension("topic", "klaviyo")
    metrics.add_metric(name="WebhookReceived", unit=MetricUnit.Count, value=1)
    if answer.status == 401:
        metrics.add_metric(name="SignatureFailures", unit=MetricUnit.Count, value=1)
        logger.warning("Rejected Klaviyo webhook with a bad or missing signature")
    outcomes = answer.body.get("outcomes", {}) if answer.status == 200 else {}
    unresolved = outcomes.get("parked", 0) + outcomes.get("unidentified", 0)
    if unresolved:
        metrics.add_metric(name="KlaviyoEngagementUnresolved", unit=MetricUnit.Count, value=unresolved)
    if outcomes.get("parked_dropped", 0):
        metrics.add_metric(name="ParkedEngagementsDropped", unit=MetricUnit.Count, value=outcomes["parked_dropped"])
    if outcomes.get("erased", 0):
        metrics.add_metric(name="ErasedDeliveriesIgnored", unit=MetricUnit.Count, value=outcomes["erased"])
    record_transitions(metrics, answer.entered, answer.exited)
    return json_response(answer.status, answer.body)
