"""POST /webhooks/klaviyo: Klaviyo engagement (opens, clicks, bounces, unsubscribes) onto profiles."""

from __future__ import annotations

from typing import Any

import httpx
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from evergreen.http_events import BadRequestBody, json_response, raw_body
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.observability import make_tracer, record_transitions
from evergreen.service.klaviyo_webhooks import KlaviyoWebhooks
from evergreen.settings import Settings
from evergreen.storage.parked_engagements import DynamoParkedEngagements
from evergreen.wiring import Edges

logger = Logger()
tracer = make_tracer()
metrics = Metrics()

edges = Edges(Settings.from_env())
LOOKUP_TIMEOUT = httpx.Timeout(3.0, connect=1.0)
_klaviyo_clients: dict[str, KlaviyoClient] = {}
"""One Klaviyo client per API key, created the first time an engagement needs a profile lookup."""


def klaviyo_api(shop: str) -> KlaviyoClient | None:
    """The shop's Klaviyo API client (lazily created, then reused), or None when it has no API key."""
    account = edges.secrets.klaviyo_account(shop)
    if account is None or not account.api_key:
        return None
    client = _klaviyo_clients.get(account.api_key)
    if client is None:
        client = KlaviyoClient(
            edges.settings.klaviyo_base_url,
            account.api_key,
            edges.settings.klaviyo_revision,
            httpx.Client(timeout=LOOKUP_TIMEOUT),
            max_attempts=1,  # a webhook must answer fast; an unresolved engagement is parked, not lost
        )
        _klaviyo_clients[account.api_key] = client
    return client


webhooks = KlaviyoWebhooks(
    accounts=edges.secrets.klaviyo_accounts,
    writer=edges.writer,
    store=edges.store,
    clock=edges.clock,
    max_body_bytes=edges.settings.max_body_bytes,
    klaviyo_index=edges.store,
    klaviyo_api=klaviyo_api,
    parked=DynamoParkedEngagements(edges.dynamodb, edges.settings.profiles_table),
)


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
    record_transitions(metrics, answer.entered, answer.exited)
    return json_response(answer.status, answer.body)
