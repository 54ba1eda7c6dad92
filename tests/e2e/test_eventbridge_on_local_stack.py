"""A Shopify webhook in Shopify's EventBridge envelope, as the partner bus's rule queues it, goes through the
same ingest on the local stack and reaches Klaviyo."""

from __future__ import annotations

import json

import pytest

from evergreen_cli.local_stack.template import resources
from tests.e2e.test_local_stack_end_to_end import SHOP, order_body, profile_imports_for, wait_for
from tests.shopify_eventbridge import eventbridge_event

pytestmark = pytest.mark.e2e


def test_an_eventbridge_order_event_reaches_klaviyo_through_the_same_ingest(local_stack):
    customer_id = 900_000_000_000_000_301
    event = eventbridge_event(json.loads(order_body(customer_id)), "orders/create", SHOP)
    local = local_stack.runtime.local
    (target,) = resources(local_stack.template, "AWS::Events::Rule")["ShopifyEventsRule"]["Properties"]["Targets"]
    queue = target["Arn"]["Fn::GetAtt"][0]

    local.client("sqs").send_message(QueueUrl=local.ref(queue), MessageBody=json.dumps(event))
    imports = wait_for(lambda: profile_imports_for(local_stack, customer_id))

    [request] = imports
    assert "new" in request["json"]["data"]["attributes"]["properties"]["evergreen_segments"]
    assert request["spec_valid"] in (True, None)
