"""The engagement poll reads every Klaviyo account's new engagement events from the Events API (the Klaviyo
sandbox, checked against Klaviyo's spec) and applies each once, as a webhook delivery would; one account
failing does not stop the others."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from evergreen.clock import FixedClock
from evergreen.klaviyo import history as kh
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.webhooks import sign_klaviyo_body
from evergreen.service.engagement_poll import DEFAULT_OVERLAP, EngagementPoll, PollCheckpoint
from evergreen.storage.engagement_poll import DynamoPollCheckpoints
from evergreen_cli.sandboxes.synthetic_shop import iso, synthetic_store
from tests.integration.backfill_harness import NOW, SHOP, Harness, make_harness

OTHER = "another-shop.myshopify.com"
"""Polled first (shops are polled in order)."""
SECRET = "poll-test-webhook-secret-0123456789"


@pytest.fixture
def harness(local_resources, shopify_sandbox, klaviyo_sandbox, monkeypatch) -> Harness:
    klaviyo_sandbox.clear()
    harness = make_harness(local_resources, shopify_sandbox, klaviyo_sandbox, monkeypatch)
    accounts = {shop: {"api_key": f"pk_{shop[:5]}", "webhook_secret": SECRET} for shop in (OTHER, SHOP)}
    client = local_resources.client("secretsmanager")
    client.put_secret_value(SecretId=harness.edges.settings.klaviyo_secrets_id, SecretString=json.dumps(accounts))
    return harness


def poll(harness: Harness, clock: FixedClock | None = None) -> EngagementPoll:
    edges = harness.edges
    if clock is not None:
        edges.clock = clock
        edges.__dict__.pop("klaviyo_webhooks", None)
        edges.__dict__.pop("writer", None)

    def reader_for(shop: str) -> KlaviyoClient:
        key = f"pk_{shop[:5]}"
        return KlaviyoClient(
            harness.klaviyo_sandbox.url,
            key,
            http=httpx.Client(),
            sleep=lambda _: None,
            rate_limits=kh.HISTORY_RATE_LIMITS,
            max_attempts=2,
        )

    checkpoints = DynamoPollCheckpoints(edges.dynamodb, edges.settings.profiles_table)
    return EngagementPoll(
        edges.secrets.klaviyo_accounts, reader_for, edges.klaviyo_webhooks, checkpoints, edges.clock, page_size=2
    )


def customers(harness: Harness, count: int = 2) -> list[str]:
    store = synthetic_store(count, seed=71, now=NOW, shop=SHOP)
    harness.shopify_sandbox.load(store)
    harness.backfill().run(SHOP)
    return [customer["email"] for customer in store["customers"]]


def profile(harness: Harness, email: str) -> Any:
    store = harness.edges.store
    return store.load(SHOP, store.customer_key_for_email(SHOP, email) or "")


def test_an_open_since_the_last_poll_moves_its_profile_into_engaged_and_an_unsubscribe_out_of_subscribed(harness):
    ada, bob = customers(harness)
    first = poll(harness).run()  # nothing new yet: the first window starts one overlap back
    assert [account.completed for account in first.accounts] == [True, True]
    before = profile(harness, bob)
    harness.klaviyo_sandbox.add_events(
        [
            {"metric": "Opened Email", "datetime": iso(NOW + timedelta(seconds=10)), "email": ada},
            {"metric": "Unsubscribed from Email Marketing", "datetime": iso(NOW + timedelta(seconds=20)), "email": bob},
        ]
    )

    report = poll(harness, FixedClock(NOW + timedelta(minutes=5))).run()

    assert "engaged" in profile(harness, ada).membership
    assert profile(harness, ada).engagement.last_email_open_at == NOW + timedelta(seconds=10)
    assert profile(harness, bob).email_consent.state == "unsubscribed"
    assert "subscribed_email" not in profile(harness, bob).membership
    assert before.email_consent.state != "unsubscribed"
    ours = next(account for account in report.accounts if account.shop == SHOP)
    assert ours.outcomes.get("written") == 2 and ours.completed and ours.failure is None
    assert ours.since == NOW - DEFAULT_OVERLAP, "the window overlaps the previous one by the overlap"
    reads = [r for r in harness.klaviyo_sandbox.requests() if r["path"].startswith("/api/events")]
    assert reads and all(r["spec_valid"] in (True, None) for r in reads)
    assert all("less-than(datetime," in r["query"]["filter"] for r in reads)


def test_an_event_delivered_by_webhook_and_by_poll_counts_once_whichever_comes_first(harness):
    ada, bob = customers(harness)
    later = NOW + timedelta(seconds=30)
    polled_first, webhook_first = harness.klaviyo_sandbox.add_events(
        [
            {"metric": "Opened Email", "datetime": iso(later), "email": ada},
            {"metric": "Clicked Email", "datetime": iso(later), "email": bob},
        ]
    )
    assert deliver(harness, webhook_first, bob, "event:klaviyo.clicked_email", later)["outcomes"] == {"written": 1}

    report = poll(harness, FixedClock(NOW + timedelta(minutes=1))).run()

    ours = next(account for account in report.accounts if account.shop == SHOP)
    assert ours.outcomes == {"written": 1, "duplicate": 1}
    assert deliver(harness, polled_first, ada, "event:klaviyo.opened_email", later)["outcomes"] == {"duplicate": 1}
    again = poll(harness, FixedClock(NOW + timedelta(minutes=2))).run()
    assert next(a for a in again.accounts if a.shop == SHOP).outcomes == {"duplicate": 2}, "the overlap re-reads"


def deliver(harness: Harness, event_id: str, email: str, topic: str, at: Any) -> dict[str, Any]:
    """The same event as Klaviyo's system webhook delivers it (`data[].external_id` is the event id)."""
    body = json.dumps(
        {
            "data": [
                {
                    "external_id": event_id,
                    "topic": topic,
                    "payload": {
                        "data": {
                            "type": "event",
                            "id": event_id,
                            "attributes": {"datetime": at.isoformat()},
                            "relationships": {"profile": {"data": {"type": "profile", "id": "01P"}}},
                        },
                        "included": [{"type": "profile", "id": "01P", "attributes": {"email": email}}],
                    },
                }
            ],
            "meta": {"timestamp": at.isoformat()},
        }
    ).encode()
    headers = sign_klaviyo_body(body, SECRET, harness.edges.clock.now())
    answer = harness.edges.klaviyo_webhooks.receive(body, headers, SHOP)
    assert answer.status == 200, answer.body
    return answer.body


@pytest.mark.parametrize("status", [401, 403, 429])
def test_one_account_failing_does_not_stop_the_others_and_its_window_is_read_again(harness, status):
    (ada,) = customers(harness, 1)
    harness.klaviyo_sandbox.add_events(
        [{"metric": "Opened Email", "datetime": iso(NOW - timedelta(minutes=1)), "email": ada}]
    )
    tries = 2 if status == 429 else 1  # the client retries a 429 (twice here), never a 401 or 403
    harness.klaviyo_sandbox.fail_next(status, count=tries, retry_after=0)

    report = poll(harness).run()

    failed, ours = report.accounts
    assert failed.shop == OTHER and failed.failure == f"klaviyo {status} get_metrics" and not failed.completed
    assert ours.shop == SHOP and ours.completed and ours.outcomes == {"written": 1}
    assert [account.shop for account in report.failures] == [OTHER]
    checkpoints = DynamoPollCheckpoints(harness.edges.dynamodb, harness.edges.settings.profiles_table)
    stuck = checkpoints.load(OTHER)
    assert stuck is not None and stuck.failure == failed.failure and stuck.completed_at is None
    assert stuck.covered_until == NOW - DEFAULT_OVERLAP, "nothing of its window counts as covered"
    later = poll(harness, FixedClock(NOW + timedelta(minutes=5))).run()
    assert later.accounts[0].since == NOW - 2 * DEFAULT_OVERLAP and later.accounts[0].completed
    assert later.accounts[0].lag_seconds == 0


def test_a_long_gap_is_caught_up_an_hour_at_a_time_and_a_stopped_run_leaves_its_window_for_the_next(harness):
    edges = harness.edges
    checkpoints = DynamoPollCheckpoints(edges.dynamodb, edges.settings.profiles_table)
    for shop in (OTHER, SHOP):
        checkpoints.save(shop, PollCheckpoint(covered_until=NOW - timedelta(hours=3)))

    first = poll(harness).run()

    assert [(a.since, a.until) for a in first.accounts] == [
        (NOW - timedelta(hours=3) - DEFAULT_OVERLAP, NOW - timedelta(hours=2))
    ] * 2
    assert first.max_lag_seconds == 2 * 3600, "two hours are still to be read"
    stopped = poll(harness).run(should_stop=lambda: True)
    assert stopped.accounts == [], "out of time before the first account: nothing read, nothing moved"
    calls: list[int] = []

    def after_the_first_page() -> bool:
        calls.append(1)
        return len(calls) > 1  # asked before the first account, then after each page

    partly = poll(harness).run(should_stop=after_the_first_page)
    assert [a.completed for a in partly.accounts] == [False], "stopped after its first page"
    loaded = checkpoints.load(OTHER)
    assert loaded is not None and loaded.covered_until == NOW - timedelta(hours=2), "its window is read again"


def test_a_checkpoint_never_moves_back_when_two_runs_overlap(harness):
    checkpoints = DynamoPollCheckpoints(harness.edges.dynamodb, harness.edges.settings.profiles_table)
    checkpoints.save(SHOP, PollCheckpoint(covered_until=NOW, completed_at=NOW))

    checkpoints.save(SHOP, PollCheckpoint(covered_until=NOW - timedelta(minutes=5), completed_at=NOW))

    loaded = checkpoints.load(SHOP)
    assert loaded is not None and loaded.covered_until == NOW
