"""A backfill from the Shopify sandbox into tables on moto server, synced to the Klaviyo sandbox, builds
the same profiles the store's own numbers imply, open recent checkouts included; again, it changes and sends
nothing; racing webhooks, a crash mid-file and a broken file all end exact."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from evergreen.segments import evaluate
from evergreen.service.backfill import MalformedBulkLine, MembershipSyncFailed, checkouts_since
from evergreen.service.shopify_webhooks import ShopifyDelivery, ShopifyWebhooks
from evergreen.shopify import sign_shopify_body
from evergreen.shopify.bulk import BulkOperationFailed
from evergreen.storage.exports import S3DataExporter
from evergreen_cli.sandboxes.synthetic_shop import expected_facts, synthetic_store
from tests.integration.backfill_harness import NOW, SHOP, Harness, make_harness

WEBHOOK_SECRET = "backfill-test-secret"
CHECKOUTS_READ_SINCE = datetime.fromisoformat(checkouts_since(None, NOW))
ABANDONED_WITHIN = timedelta(days=3)


@pytest.fixture
def harness(local_resources, shopify_sandbox, klaviyo_sandbox, monkeypatch) -> Harness:
    shopify_sandbox.state.faults.clear()
    klaviyo_sandbox.clear()
    return make_harness(local_resources, shopify_sandbox, klaviyo_sandbox, monkeypatch)


def klaviyo_paths(harness: Harness) -> list[str]:
    """Where each request to Klaviyo went (reading a bulk job back, or its import errors, counts as the job's)."""
    jobs = "/api/profile-bulk-import-jobs"
    return [
        jobs if request["path"].startswith(jobs) else request["path"] for request in harness.klaviyo_sandbox.requests()
    ]


def versions(harness: Harness) -> dict[str, int]:
    found = {}
    for key in harness.edges.store.keys_in_shop(SHOP):
        if not key.startswith(("customer#", "guest#")):
            continue
        profile = harness.edges.store.load(SHOP, key)
        if profile is not None:
            found[key] = profile.version
    return found


def pending_outbox(harness: Harness) -> list[Any]:
    pending = []
    for shard in range(harness.edges.settings.due_shards):
        page = harness.edges.store.unsynced(shard, NOW + timedelta(days=1))
        pending += [change for change in page.items if change.shop == SHOP]
    return pending


def records_in(store: dict[str, Any]) -> int:
    """Root records a backfill reads: every customer and order, and the checkouts updated within its window."""
    recent = [c for c in store["abandonedCheckouts"] if datetime.fromisoformat(c["updatedAt"]) >= CHECKOUTS_READ_SINCE]
    return len(store["customers"]) + len(store["orders"]) + len(recent)


def assert_profiles_match_the_store(harness: Harness, store: dict[str, Any]) -> None:
    definitions = harness.edges.definitions
    for key, truth in expected_facts(store).items():
        profile = harness.edges.store.load(SHOP, key)
        if truth.orders_count == 0 and key.startswith("guest#"):
            continue
        assert profile is not None, key
        facts = profile.facts()
        assert facts["orders_count"] == truth.orders_count, key
        assert facts["net_spent"] == truth.net_spent, key
        assert facts["last_order_at"] == truth.last_order_at, key
        assert (facts["city"], facts["discount_codes_used"]) == (truth.city, truth.discount_codes), key
        if key.startswith("customer#"):
            assert facts["email_consent"] == truth.email_consent, key
        assert set(profile.membership) == set(evaluate(facts, definitions, NOW).segments), key
        lapsed = truth.last_order_at is not None and truth.last_order_at <= NOW - timedelta(days=180)
        assert ("lapsed" in profile.membership) == lapsed, key
        open_at = truth.open_checkout_at
        read = open_at if open_at is not None and open_at >= CHECKOUTS_READ_SINCE else None
        assert facts["open_checkout_at"] == read, key
        abandoned = read is not None and read >= NOW - ABANDONED_WITHIN
        assert ("abandoned_checkout" in profile.membership) == abandoned, key


def test_a_seeded_store_backfilled_twice_matches_the_store_and_the_second_run_changes_and_sends_nothing(harness):
    store = synthetic_store(8, seed=11, now=NOW, shop=SHOP)
    harness.shopify_sandbox.load(store)

    first = harness.backfill(workers=4).run(SHOP)

    assert first.finished and first.counts.skipped == 0
    assert_profiles_match_the_store(harness, store)
    sent = klaviyo_paths(harness)
    assert sent and set(sent) == {"/api/profile-bulk-import-jobs"}, "no Entered Segment events by default"
    assert pending_outbox(harness) == [], "every backfilled change is marked synced"
    before = versions(harness)

    second = harness.backfill(workers=4).run(SHOP)

    assert second.finished and second.counts.applied == 0
    assert second.counts.records == first.counts.records
    assert versions(harness) == before
    assert klaviyo_paths(harness) == sent, "the second run sends nothing"


def abandoned(number: int, customer: dict[str, Any] | None, hours_ago: int, completed: bool = False) -> dict[str, Any]:
    """An AbandonedCheckout node last touched `hours_ago` before NOW."""
    at = (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")
    return {
        "id": f"gid://shopify/AbandonedCheckout/{number}",
        "createdAt": at,
        "updatedAt": at,
        "completedAt": at if completed else None,
        "customer": {"id": customer["id"]} if customer else None,
    }


def store_with_checkouts() -> tuple[dict[str, Any], list[str]]:
    """Six customers, one order; checkouts: open a day ago, followed by that order, completed, open ten days
    ago, open 45 days ago (before the window) and a guest's. Returns the store and the customers' keys."""
    store = synthetic_store(6, seed=61, now=NOW, shop=SHOP)
    customers = store["customers"]
    order = next(o for o in store["orders"] if o["customer"])
    store["orders"] = [
        {
            **order,
            "id": "gid://shopify/Order/6100001",
            "customer": {"id": customers[1]["id"]},
            "email": customers[1]["email"],
            "createdAt": (NOW - timedelta(hours=20)).isoformat(),
            "updatedAt": (NOW - timedelta(hours=20)).isoformat(),
            "refunds": [],
        }
    ]
    store["abandonedCheckouts"] = [
        abandoned(1, customers[0], hours_ago=24),
        abandoned(2, customers[1], hours_ago=40),
        abandoned(3, customers[2], hours_ago=24, completed=True),
        abandoned(4, customers[3], hours_ago=240),
        abandoned(5, customers[4], hours_ago=45 * 24),
        abandoned(6, None, hours_ago=24),
    ]
    return store, [f"customer#{c['id'].rsplit('/', 1)[-1]}" for c in customers]


def members_of(harness: Harness, segment: str) -> set[str]:
    found = set()
    for key in harness.edges.store.keys_in_shop(SHOP):
        profile = harness.edges.store.load(SHOP, key) if key.startswith(("customer#", "guest#")) else None
        if profile is not None and segment in profile.membership:
            found.add(key)
    return found


def test_a_backfilled_stores_open_recent_checkouts_put_their_customers_in_abandoned_checkout(harness):
    store, keys = store_with_checkouts()
    harness.shopify_sandbox.load(store)

    report = harness.backfill().run(SHOP)

    assert report.finished
    assert members_of(harness, "abandoned_checkout") == {keys[0]}, "ordered, completed and older ones are not"
    assert_profiles_match_the_store(harness, store)
    assert report.counts.records == len(keys) + 1 + 5, "the checkout before the window is not read"
    assert report.counts.skipped == 1, "a guest's checkout names nobody"
    ten_days_ago = harness.edges.store.load(SHOP, keys[3])
    assert ten_days_ago is not None and ten_days_ago.open_checkout_at == NOW - timedelta(hours=240)


def test_backfilling_checkouts_again_changes_and_sends_nothing(harness):
    store, _ = store_with_checkouts()
    harness.shopify_sandbox.load(store)
    harness.backfill().run(SHOP)
    sent, before = klaviyo_paths(harness), versions(harness)

    again = harness.backfill().run(SHOP)

    assert again.finished and again.counts.applied == 0
    assert versions(harness) == before
    assert klaviyo_paths(harness) == sent


def test_a_checkout_its_webhook_opened_is_still_closed_by_its_completing_webhook_after_a_backfill(harness):
    store, keys = store_with_checkouts()
    harness.shopify_sandbox.load(store)
    node = store["abandonedCheckouts"][0]
    customer_id = int(keys[0].removeprefix("customer#"))
    webhook = {
        "id": 1,
        "token": "0b7e1c0ffee",  # the backfill names it "1" (its id), which would sort after this token
        "customer": {"id": customer_id},
        "created_at": node["createdAt"],
        "updated_at": node["updatedAt"],
        "completed_at": None,
    }
    deliver(harness, "checkouts/create", webhook)

    harness.backfill().run(SHOP)
    assert keys[0] in members_of(harness, "abandoned_checkout")
    deliver(harness, "checkouts/update", {**webhook, "completed_at": NOW.isoformat()})

    assert keys[0] not in members_of(harness, "abandoned_checkout")


def test_entered_segment_events_are_sent_in_bulk_only_when_asked(harness):
    harness.shopify_sandbox.load(synthetic_store(4, seed=5, now=NOW, shop=SHOP))

    harness.backfill(fire_segment_events=True).run(SHOP)

    assert "/api/event-bulk-create-jobs" in klaviyo_paths(harness)


def _webhook(harness: Harness) -> ShopifyWebhooks:
    edges = harness.edges
    exporter = S3DataExporter(edges.s3, edges.settings.exports_bucket)
    return ShopifyWebhooks(
        lambda shop: (WEBHOOK_SECRET,), edges.writer, edges.store, edges.order_links, exporter, edges.clock, 1 << 20
    )


def deliver(harness: Harness, topic: str, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    delivery = ShopifyDelivery(SHOP, topic, sign_shopify_body(raw, WEBHOOK_SECRET), raw)
    assert _webhook(harness).receive(delivery).status == 200


def test_a_backfill_racing_live_webhooks_ends_in_the_newest_state(harness):
    store = synthetic_store(6, seed=21, now=NOW, shop=SHOP)
    order = next(o for o in store["orders"] if o["customer"] and not o["cancelledAt"] and not o["refunds"])
    customer_id = order["customer"]["id"].rsplit("/", 1)[-1]
    harness.shopify_sandbox.load(store)
    newer = (NOW - timedelta(minutes=5)).isoformat()
    # Before the backfill reads it: the order was cancelled (a newer snapshot than the bulk file's).
    deliver(
        harness,
        "orders/cancelled",
        {
            "id": int(order["id"].rsplit("/", 1)[-1]),
            "email": order["email"],
            "customer": {"id": int(customer_id)},
            "created_at": order["createdAt"],
            "updated_at": newer,
            "cancelled_at": newer,
            "financial_status": "voided",
            "total_price": order["totalPriceSet"]["shopMoney"]["amount"],
            "currency": "USD",
        },
    )
    sent: list[bool] = []

    def customer_update_mid_file(phase: str, counts: Any, total: int | None) -> None:
        if phase == "orders" and not sent:
            sent.append(True)
            deliver(
                harness,
                "customers/update",
                {"id": int(customer_id), "email": order["email"], "tags": "webhook-tag", "updated_at": newer},
            )

    harness.backfill(on_progress=customer_update_mid_file).run(SHOP)

    profile = harness.edges.store.load(SHOP, f"customer#{customer_id}")
    assert profile is not None
    stored = harness.edges.store.load_order(SHOP, order["id"].rsplit("/", 1)[-1])
    assert stored is not None and stored.state.order is not None
    assert stored.state.order.cancelled, "the newer webhook snapshot was kept"
    assert profile.customer_tags == ["webhook-tag"]
    # The customer phase ran before the webhook: a second backfill with the older bulk customer changes nothing.
    harness.backfill().run(SHOP)
    assert harness.edges.store.load(SHOP, f"customer#{customer_id}").customer_tags == ["webhook-tag"]


class Crash(Exception):
    pass


def test_a_crash_mid_file_resumes_from_the_checkpoint_without_double_counting(harness):
    store = synthetic_store(8, seed=31, now=NOW, shop=SHOP)
    harness.shopify_sandbox.load(store)
    seen: list[int] = []

    def crash_after_twelve_orders(phase: str, counts: Any, total: int | None) -> None:
        if phase == "orders":
            seen.append(1)
            if len(seen) == 12:
                raise Crash

    with pytest.raises(Crash):
        harness.backfill(checkpoint_every=5, on_progress=crash_after_twelve_orders).run(SHOP)
    stopped = harness.progress.load(SHOP)
    assert stopped is not None and stopped.phase == "orders" and stopped.line > 0

    resumed = harness.backfill(checkpoint_every=5, workers=3).run(SHOP)

    assert resumed.finished
    assert resumed.counts.records == records_in(store), "each record counted once"
    assert_profiles_match_the_store(harness, store)
    assert pending_outbox(harness) == []


def test_a_crash_among_abandoned_checkouts_resumes_from_the_checkpoint_without_double_counting(harness):
    store = synthetic_store(12, seed=22, now=NOW, shop=SHOP)
    harness.shopify_sandbox.load(store)
    seen: list[int] = []

    def crash_at_the_second_checkout(phase: str, counts: Any, total: int | None) -> None:
        if phase == "abandonedCheckouts":
            seen.append(1)
            if len(seen) == 2:
                raise Crash

    with pytest.raises(Crash):
        harness.backfill(checkpoint_every=1, on_progress=crash_at_the_second_checkout).run(SHOP)
    stopped = harness.progress.load(SHOP)
    assert stopped is not None and stopped.phase == "abandonedCheckouts" and stopped.line == 1

    resumed = harness.backfill(checkpoint_every=1).run(SHOP)

    assert resumed.finished and resumed.counts.records == records_in(store)
    assert_profiles_match_the_store(harness, store)
    assert pending_outbox(harness) == []


def test_a_malformed_line_applies_nothing_of_its_record_and_the_next_run_completes(harness):
    store = synthetic_store(4, seed=41, now=NOW, shop=SHOP)
    harness.shopify_sandbox.load(store)
    harness.shopify_sandbox.fail_next("malformed_line")

    with pytest.raises(MalformedBulkLine, match="line 2"):
        harness.backfill().run(SHOP)
    assert versions(harness) == {}, "the record before the broken line was not applied"

    assert harness.backfill().run(SHOP).finished
    assert_profiles_match_the_store(harness, store)


def test_a_failed_bulk_operation_is_reported_and_the_next_run_starts_a_new_one(harness):
    store = synthetic_store(3, seed=51, now=NOW, shop=SHOP)
    harness.shopify_sandbox.load(store)
    harness.shopify_sandbox.fail_next("bulk_failed")

    with pytest.raises(BulkOperationFailed):
        harness.backfill().run(SHOP)

    assert harness.backfill().run(SHOP).finished
    assert_profiles_match_the_store(harness, store)


def test_a_run_asked_to_yield_checkpoints_and_the_next_invocation_finishes_exactly(harness):
    store = synthetic_store(6, seed=71, now=NOW, shop=SHOP)
    harness.shopify_sandbox.load(store)
    invocations = 0
    report = harness.backfill(checkpoint_every=4, should_stop=lambda: True).run(SHOP)
    while not report.finished:
        invocations += 1
        stopped = harness.progress.load(SHOP)
        assert stopped is not None and stopped.stopped_cleanly
        report = harness.backfill(checkpoint_every=4, should_stop=lambda: True).run(SHOP)

    assert invocations > 2
    assert report.counts.records == records_in(store)
    assert_profiles_match_the_store(harness, store)
    assert pending_outbox(harness) == []


def test_a_klaviyo_outage_stops_the_backfill_before_its_checkpoint_and_the_next_run_syncs_everyone(harness):
    store = synthetic_store(4, seed=81, now=NOW, shop=SHOP)
    harness.shopify_sandbox.load(store)
    harness.klaviyo_sandbox.fail_next(500, count=5)

    with pytest.raises(MembershipSyncFailed):
        harness.backfill().run(SHOP)

    assert harness.backfill().run(SHOP).finished
    assert_profiles_match_the_store(harness, store)
    assert pending_outbox(harness) == [], "nothing is left for the per-change path (and its Entered events)"
