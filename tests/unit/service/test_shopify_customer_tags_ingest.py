"""customer.tags_added / customer.tags_removed through the real adapters on in-process moto."""

from __future__ import annotations

CUSTOMER = 706405506930370084


def tags(names: list[str], at: str) -> dict:
    """Shopify's documented payload for both tag topics (shopify.dev webhook reference, customer.tags_added)."""
    return {"customerId": f"gid://shopify/Customer/{CUSTOMER}", "tags": names, "occurredAt": at}


def test_tag_events_delivered_out_of_order_and_twice_leave_the_exact_tags(world):
    removed = world.shopify("customer.tags_removed", tags(["wholesale"], "2025-03-01T10:05:00Z"), event_id="t-2")
    added = world.shopify("customer.tags_added", tags(["VIP", "wholesale"], "2025-03-01T10:00:00Z"), event_id="t-1")
    again = world.shopify("customer.tags_added", tags(["VIP", "wholesale"], "2025-03-01T10:00:00Z"), event_id="t-1")

    assert [removed.status, added.status, again.status] == [200, 200, 200]
    assert again.outcome == "duplicate"
    assert world.profile(CUSTOMER).customer_tags == ["VIP"]
    assert world.facts(CUSTOMER)["customer_tags"] == frozenset({"VIP"})


def test_an_upper_case_tag_topic_is_the_same_topic(world):
    answer = world.shopify("CUSTOMER.TAGS_ADDED", tags(["VIP"], "2025-03-01T10:00:00Z"))

    assert answer.status == 200
    assert world.profile(CUSTOMER).customer_tags == ["VIP"]
