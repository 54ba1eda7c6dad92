"""Klaviyo deliveries over HTTP to the local stack, signed as Klaviyo signs them (HTTP-date timestamp)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from evergreen.domain.profile import Profile
from evergreen.storage import keys
from evergreen.storage.profiles import profile_from_item
from evergreen_cli.commands.send_webhook import klaviyo_headers, shopify_headers
from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_KLAVIYO_SECRET, DEFAULT_LOCAL_SHOPIFY_SECRET

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOP = "evergreen-demo.myshopify.com"


def stored(stack: Any, key: str) -> Profile | None:
    resources = stack.runtime.local
    item = resources.client("dynamodb").get_item(
        TableName=resources.table_name, Key=keys.profile_key(SHOP, key), ConsistentRead=True
    )
    found = item.get("Item")
    return profile_from_item(found) if found else None


def open_body(external_id: str, *, email: str | None, profile_id: str) -> bytes:
    document = json.loads((ROOT / "events" / "klaviyo" / "email_opened.json").read_text())
    item = document["data"][0]
    item["external_id"] = external_id
    payload = item["payload"]
    payload["data"]["attributes"]["datetime"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    payload["data"]["relationships"]["profile"]["data"]["id"] = profile_id
    payload["included"] = [entry for entry in payload["included"] if entry["type"] != "profile"]
    if email is not None:
        payload["included"].append({"type": "profile", "id": profile_id, "attributes": {"email": email}})
    return json.dumps(document).encode()


def send_klaviyo(stack: Any, body: bytes) -> httpx.Response:
    headers = klaviyo_headers(body, DEFAULT_LOCAL_KLAVIYO_SECRET)
    assert headers["Klaviyo-Timestamp"].endswith(" GMT")
    return httpx.post(f"{stack.klaviyo_webhook_url}?shop={SHOP}", content=body, headers=headers)


def test_a_delivery_signed_like_klaviyos_example_moves_its_profile_into_engaged(local_stack):
    body = open_body("01KE2EOPEN0001", email="e2e.reader@example.com", profile_id="01KE2E1")

    response = send_klaviyo(local_stack, body)

    assert response.status_code == 200, response.text
    profile = stored(local_stack, "guest#e2e.reader@example.com")
    assert profile is not None and "engaged" in profile.membership


def test_an_open_naming_only_the_klaviyo_profile_id_reaches_the_customer_sync_linked_to_it(local_stack):
    order = json.loads((ROOT / "events" / "shopify" / "orders_create.json").read_text())
    order["customer"]["id"], order["id"] = 900_000_000_000_000_777, 9_000_000_000_000_007_770
    body = json.dumps(order).encode()
    headers = shopify_headers(body, "orders/create", SHOP, DEFAULT_LOCAL_SHOPIFY_SECRET)
    assert httpx.post(local_stack.shopify_webhook_url, content=body, headers=headers).status_code == 200
    key = "customer#900000000000000777"
    deadline = time.monotonic() + 15
    while (profile := stored(local_stack, key)) is None or profile.klaviyo_profile_id is None:
        assert time.monotonic() < deadline, "sync never recorded the Klaviyo profile id"
        local_stack.drain()
        time.sleep(0.05)

    response = send_klaviyo(local_stack, open_body("01KE2EOPEN0002", email=None, profile_id=profile.klaviyo_profile_id))

    assert response.status_code == 200, response.text
    assert json.loads(response.text)["outcomes"] == {"written": 1}
    after = stored(local_stack, key)
    assert after is not None and "engaged" in after.membership
