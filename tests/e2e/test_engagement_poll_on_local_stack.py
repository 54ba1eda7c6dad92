"""On the local stack, with no Klaviyo webhook registered, the engagement poll keeps engagement current: an open
added to the Klaviyo sandbox moves its profile into `engaged` at the next poll (and Klaviyo hears of it), an
unsubscribe takes its profile out of `subscribed_email`, and the same open also delivered by webhook counts once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from evergreen_cli.commands.send_webhook import klaviyo_headers, shopify_headers
from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_KLAVIYO_SECRET, DEFAULT_LOCAL_SHOPIFY_SECRET
from tests.e2e.test_klaviyo_local_stack import SHOP, open_body, stored

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def subscribed_customer(stack: Any, customer_id: int, email: str) -> str:
    customer = json.loads((ROOT / "events" / "shopify" / "customers_create.json").read_text())
    customer.update(id=customer_id, email=email, admin_graphql_api_id=f"gid://shopify/Customer/{customer_id}")
    customer["email_marketing_consent"] = {
        "state": "subscribed",
        "opt_in_level": "single_opt_in",
        "consent_updated_at": "2026-01-01T00:00:00Z",
    }
    body = json.dumps(customer).encode()
    headers = shopify_headers(body, "customers/create", SHOP, DEFAULT_LOCAL_SHOPIFY_SECRET)
    answer = httpx.post(stack.shopify_webhook_url, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return f"customer#{customer_id}"


def add_events(stack: Any, entries: list[dict[str, Any]]) -> list[str]:
    answer = httpx.post(f"{stack.klaviyo_url}/_sandbox/events", json=entries)
    assert answer.status_code == 200, answer.text
    ids: list[str] = answer.json()["ids"]
    return ids


def just_now(seconds_ago: int = 5) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def polled_outcomes(result: dict[str, Any]) -> dict[str, int]:
    (ours,) = [account for account in result["accounts"] if account["shop"] == SHOP]
    assert ours["completed"], ours
    outcomes: dict[str, int] = ours["outcomes"]
    return outcomes


def test_an_open_added_to_klaviyo_moves_its_profile_into_engaged_at_the_next_poll(local_stack):
    key = subscribed_customer(local_stack, 900_000_000_000_001_901, "poll.reader@example.com")
    assert "engaged" not in stored(local_stack, key).membership

    add_events(local_stack, [{"metric": "Opened Email", "datetime": just_now(), "email": "poll.reader@example.com"}])
    result = local_stack.run_engagement_poll()

    assert polled_outcomes(result).get("written") == 1
    assert "engaged" in stored(local_stack, key).membership
    deadline = time.monotonic() + 15
    while not reached_klaviyo(local_stack, "poll.reader@example.com", "engaged"):
        assert time.monotonic() < deadline, "the change never reached the Klaviyo sandbox"
        local_stack.drain()
        time.sleep(0.05)


def reached_klaviyo(stack: Any, email: str, segment: str) -> bool:
    state = httpx.get(f"{stack.klaviyo_url}/_sandbox/state").json()
    for profile in state["profiles"].values() if isinstance(state["profiles"], dict) else state["profiles"]:
        if (profile.get("email") or "").lower() == email:
            return segment in (profile.get("properties") or {}).get("evergreen_segments", [])
    return False


def test_an_unsubscribe_added_to_klaviyo_takes_its_profile_out_of_subscribed_email(local_stack):
    key = subscribed_customer(local_stack, 900_000_000_000_001_902, "poll.leaver@example.com")
    assert "subscribed_email" in stored(local_stack, key).membership

    add_events(
        local_stack,
        [{"metric": "Unsubscribed from Email Marketing", "datetime": just_now(), "email": "poll.leaver@example.com"}],
    )
    local_stack.run_engagement_poll()

    profile = stored(local_stack, key)
    assert profile is not None and "subscribed_email" not in profile.membership
    assert profile.email_consent.state == "unsubscribed"


def test_the_same_open_polled_and_delivered_by_webhook_counts_once(local_stack):
    key = subscribed_customer(local_stack, 900_000_000_000_001_903, "poll.twice@example.com")
    (event_id,) = add_events(
        local_stack, [{"metric": "Opened Email", "datetime": just_now(), "email": "poll.twice@example.com"}]
    )
    assert polled_outcomes(local_stack.run_engagement_poll()).get("written") == 1
    version = stored(local_stack, key).version

    body = open_body(event_id, email="poll.twice@example.com", profile_id="01KPOLLTWICE")
    answer = httpx.post(
        f"{local_stack.klaviyo_webhook_url}?shop={SHOP}",
        content=body,
        headers=klaviyo_headers(body, DEFAULT_LOCAL_KLAVIYO_SECRET),
    )

    assert answer.status_code == 200 and answer.json()["outcomes"] == {"duplicate": 1}
    assert polled_outcomes(local_stack.run_engagement_poll()).get("written", 0) == 0, "the overlap reads it again"
    assert stored(local_stack, key).version == version
