"""customers/data_request still writes its export, though the S3 client is only created by the first export."""

from __future__ import annotations

import json
from pathlib import Path

from evergreen.shopify.hmac import sign_shopify_body
from evergreen_cli.local_stack.http_api import build_http_api_v2_event

ROOT = Path(__file__).resolve().parents[3]
SHOP = "handler-test.myshopify.com"
SECRET = "handler-test-shopify-secret"


def test_a_data_request_writes_the_customers_export_to_the_exports_bucket(handlers, context):
    module = handlers["shopify_webhook"]
    document = json.loads((ROOT / "events" / "shopify" / "customers_data_request.json").read_text())
    document["shop_domain"] = SHOP
    body = json.dumps(document).encode()
    headers = {
        "x-shopify-topic": "customers/data_request",
        "x-shopify-shop-domain": SHOP,
        "x-shopify-hmac-sha256": sign_shopify_body(body, SECRET),
        "x-shopify-event-id": "data-request-export-1",
    }
    assert "s3" not in vars(module.edges), "the S3 client is created at init"

    answer = module.lambda_handler(build_http_api_v2_event("POST", "/webhooks/shopify", headers, body), context)

    assert answer["statusCode"] == 200
    bucket = module.edges.settings.exports_bucket
    listed = module.edges.s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert len(listed) == 1
