"""customers/redact reaches Klaviyo: what Evergreen wrote there (properties, list memberships) is cleared.

Through the real adapters: the Shopify use case on in-process moto publishes an erasure before deleting the
rows, and SegmentSync, reading it from the queue, clears the profile in the Klaviyo sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from evergreen.domain.changes import ProfileErasure, QueueMessage, parse_queue_message
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.pusher import KlaviyoPusher
from evergreen.service.sync import SegmentSync
from evergreen.storage import keys
from evergreen_cli.sandboxes.klaviyo_api import SandboxServer, start_sandbox

SHOP = "evergreen-test.myshopify.com"
CUSTOMER = 4_242_424_242
EMAIL = "grace.hopper@example.com"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    server = start_sandbox("127.0.0.1", 0, None)
    yield server
    server.stop()


def sync_for(edges, sandbox, clock, *, delete: bool = False) -> SegmentSync:
    client = KlaviyoClient(sandbox.url, "pk_test", http=httpx.Client(), sleep=lambda _: None, max_attempts=2)
    lists = {name: f"L{name}" for name in edges.definitions.names}
    return SegmentSync(edges.store, lambda shop: KlaviyoPusher(client, lists), clock, delete_profiles_in_klaviyo=delete)


def order(order_id: int, total: str = "250.00") -> dict[str, Any]:
    return {
        "id": order_id,
        "email": EMAIL,
        "created_at": "2026-10-30T10:00:00Z",
        "updated_at": "2026-10-30T10:00:00Z",
        "currency": "USD",
        "financial_status": "paid",
        "total_price": total,
        "current_total_price": total,
        "total_price_set": {"shop_money": {"amount": total, "currency_code": "USD"}},
        "test": False,
        "cancelled_at": None,
        "tags": "",
        "line_items": [{"id": order_id * 10, "product_type": "Outerwear", "price": total, "quantity": 1}],
        "refunds": [],
        "customer": {"id": CUSTOMER, "email": EMAIL, "first_name": "Grace", "last_name": "Hopper"},
    }


def redact() -> dict[str, Any]:
    return {
        "shop_id": 1,
        "shop_domain": SHOP,
        "customer": {"id": CUSTOMER, "email": EMAIL, "phone": "+14155550123"},
        "orders_to_redact": [1001],
    }


def queued(world) -> list[QueueMessage]:
    return [parse_queue_message(json.dumps(body)) for body in world.queued()]


def synced_customer(world, sync: SegmentSync, sandbox: SandboxServer) -> str:
    """The customer ordered, and sync pushed the profile into Klaviyo; returns its Klaviyo id."""
    world.shopify("orders/create", order(1001))
    report = sync.handle(queued(world))
    assert report.failed == set() and report.pushed >= 1
    [(klaviyo_id, profile)] = sandbox.state.profiles.items()
    assert profile["properties"]["evergreen_segments"]
    assert any(klaviyo_id in members for members in sandbox.state.lists.values())
    return klaviyo_id


def test_a_redacted_customer_loses_evergreens_properties_and_lists_in_klaviyo(world, edges, clock, sandbox):
    sync = sync_for(edges, sandbox, clock)
    klaviyo_id = synced_customer(world, sync, sandbox)
    events_before = len(sandbox.state.events)

    assert world.shopify("customers/redact", redact()).status == 200
    assert world.profile(CUSTOMER) is None
    report = sync.handle(queued(world))

    assert report.failed == set() and report.erased == 1
    properties = sandbox.state.profiles[klaviyo_id]["properties"]
    assert "evergreen_segments" not in properties and "evergreen_synced_version" not in properties
    assert all(klaviyo_id not in members for members in sandbox.state.lists.values())
    assert len(sandbox.state.events) == events_before, "an erased person gets no exit events (they trigger flows)"
    assert sandbox.state.deleted == [], "Klaviyo's own deletion is off by default"


def test_the_erasure_carries_identifiers_and_segments_only(world, edges, clock, sandbox):
    synced_customer(world, sync_for(edges, sandbox, clock), sandbox)

    world.shopify("customers/redact", redact())

    [body] = world.queued()
    assert body["kind"] == "erase"
    text = json.dumps(body).lower()
    assert EMAIL not in text and "4155550123" not in text and "grace" not in text
    erasure = ProfileErasure.model_validate(body)
    assert [p.external_id for p in erasure.profiles] == [f"{SHOP}/customer#{CUSTOMER}"]
    assert erasure.profiles[0].klaviyo_profile_id


def test_with_the_setting_on_klaviyo_is_asked_to_delete_the_profile(world, edges, clock, sandbox):
    sync = sync_for(edges, sandbox, clock, delete=True)
    klaviyo_id = synced_customer(world, sync, sandbox)

    world.shopify("customers/redact", redact())
    report = sync.handle(queued(world))

    assert report.erased == 1
    assert sandbox.state.deleted == [klaviyo_id]
    assert klaviyo_id not in sandbox.state.profiles
    [deletion] = [r for r in sandbox.requests() if r["path"] == "/api/data-privacy-deletion-jobs"]
    assert deletion["json"]["data"]["attributes"]["profile"]["data"] == {
        "type": "profile",
        "id": klaviyo_id,
        "attributes": {},
    }


def test_a_profile_whose_klaviyo_id_was_never_learned_is_found_by_external_id(world, edges, clock, sandbox):
    sync = sync_for(edges, sandbox, clock)
    klaviyo_id = synced_customer(world, sync, sandbox)
    edges.dynamodb.update_item(
        TableName=edges.settings.profiles_table,
        Key=keys.profile_key(SHOP, f"customer#{CUSTOMER}"),
        UpdateExpression="REMOVE klaviyo_profile_id",
    )
    world.shopify("customers/redact", redact())

    report = sync.handle(queued(world))

    assert report.erased == 1
    assert "evergreen_segments" not in sandbox.state.profiles[klaviyo_id]["properties"]


def test_a_klaviyo_outage_keeps_the_erasure_for_retry_after_the_rows_are_gone(world, edges, clock, sandbox):
    sync = sync_for(edges, sandbox, clock)
    klaviyo_id = synced_customer(world, sync, sandbox)
    world.shopify("customers/redact", redact())
    messages = queued(world)
    sandbox.fail_next(503, count=2)  # every attempt of the first try

    failed = sync.handle(messages)
    assert failed.failed == {0} and failed.poison == set()
    retried = sync.handle(messages)

    assert retried.erased == 1
    assert "evergreen_segments" not in sandbox.state.profiles[klaviyo_id]["properties"]


def test_when_the_erasure_cannot_be_enqueued_nothing_is_deleted(world, edges, clock, sandbox):
    synced_customer(world, sync_for(edges, sandbox, clock), sandbox)
    edges.sqs.delete_queue(QueueUrl=edges.settings.segment_changes_queue_url)

    with pytest.raises(Exception):  # noqa: B017 - the handler turns any such failure into a 5xx: Shopify retries
        world.shopify("customers/redact", redact())

    assert world.profile(CUSTOMER) is not None


def test_a_change_queued_before_the_redact_is_dropped_by_sync(world, edges, clock, sandbox):
    sync = sync_for(edges, sandbox, clock)
    synced_customer(world, sync, sandbox)
    world.shopify("orders/create", order(1002, "900.00"))  # its change waits in the queue
    imports_before = [r for r in sandbox.requests() if r["path"].startswith("/api/profile")]

    world.shopify("customers/redact", redact())
    report = sync.handle(queued(world))

    assert report.gone == 1 and report.pushed == 0 and report.erased == 1
    imports = [r for r in sandbox.requests() if r["path"].startswith("/api/profile")][len(imports_before) :]
    assert all("patch_properties" in json.dumps(r["json"]) for r in imports if r["method"] == "POST"), (
        "after the redact Klaviyo receives only the erasure, no profile import"
    )


def test_a_redact_landing_while_a_push_is_in_flight_is_erased_again_after_it(world, edges, clock, sandbox):
    sync = sync_for(edges, sandbox, clock)
    klaviyo_id = synced_customer(world, sync, sandbox)
    world.shopify("orders/create", order(1002, "900.00"))
    [change] = queued(world)
    redacted: list[bool] = []

    def redact_meanwhile(**_: Any) -> None:
        """Sync has read that the profile exists; before its push lands, the customer is redacted and the erasure
        applied in Klaviyo (by another sync invocation)."""
        if not redacted:
            redacted.append(True)
            world.shopify("customers/redact", redact())
            assert sync.handle(queued(world)).erased == 1

    edges.dynamodb.meta.events.register("after-call.dynamodb.BatchGetItem", redact_meanwhile)
    report = sync.handle([change])

    assert redacted and report.pushed == 1
    posts = [r for r in sandbox.requests() if r["method"] == "POST" and r["path"] == "/api/profile-import"]
    assert "patch_properties" in json.dumps(posts[-1]["json"]), "Klaviyo's last word is the erasure"
    properties = sandbox.state.profiles[klaviyo_id]["properties"]
    assert "evergreen_segments" not in properties


def test_shop_redact_clears_every_synced_profile_in_klaviyo(world, edges, clock, sandbox):
    sync = sync_for(edges, sandbox, clock)
    synced_customer(world, sync, sandbox)
    for number in range(3):
        other = order(2000 + number)
        other["customer"] = {"id": 5_000 + number, "email": f"other{number}@example.com"}
        other["email"] = f"other{number}@example.com"
        world.shopify("orders/create", other)
    assert sync.handle(queued(world)).failed == set()
    assert len(sandbox.state.profiles) == 4

    answer = world.shopify("shop/redact", {"shop_id": 1, "shop_domain": SHOP})
    report = sync.handle(queued(world))

    assert answer.status == 200 and report.failed == set() and report.erased == 1
    for klaviyo_id, profile in sandbox.state.profiles.items():
        assert not {"evergreen_segments", "evergreen_synced_version"} & set(profile["properties"]), klaviyo_id
    assert all(not members for members in sandbox.state.lists.values())
    assert [keys.ref_of(item)[1] for item in world.items()] == ["erased#shop"]
