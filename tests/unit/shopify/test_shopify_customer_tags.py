"""Customer tags after 2025-01: `customer.tags_added` / `customer.tags_removed` keep `customer_tags` exact.

Payload source: Shopify's webhook reference, topics customer.tags_added and customer.tags_removed
(shopify.dev/docs/api/webhooks?reference=toml): `{"customerId": "gid://shopify/Customer/<id>", "tags": [...],
"occurredAt": "<ISO 8601 with offset>"}`; the topic names come from Shopify/shopify-api-js's topic list
(`customer.tags_added` ↔ CUSTOMER_TAGS_ADDED) and the 2023-07 changelog "Additional webhook subscription
topics for customer tags".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from evergreen.domain.events import CustomerTagsChanged, CustomerUpserted
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply
from evergreen.segments import evaluate, parse_definitions
from evergreen.shopify.topics import SUBSCRIPTION_TOPICS, SUPPORTED_TOPICS, translate
from tests.unit.shopify.shopify_samples_2025_10 import CUSTOMER_ID, customer_tags, customer_update_2024

ROOT = Path(__file__).resolve().parents[3]
RECEIVED = datetime(2025, 10, 1, tzinfo=UTC)
T0 = datetime(2025, 3, 1, 14, 0, tzinfo=UTC)
SHOP = "shop.myshopify.com"


def blank() -> Profile:
    return Profile(shop=SHOP, customer_id=str(CUSTOMER_ID))


def tags_event(present: bool, tags: list[str], minute: int) -> CustomerTagsChanged:
    at = T0 + timedelta(minutes=minute)
    return CustomerTagsChanged(customer_id=str(CUSTOMER_ID), tags=tuple(tags), present=present, occurred_at=at)


def snapshot(tags: list[str], minute: int) -> CustomerUpserted:
    at = T0 + timedelta(minutes=minute)
    return CustomerUpserted(customer_id=str(CUSTOMER_ID), tags=tuple(tags), updated_at=at)


def applied(events: list[CustomerTagsChanged | CustomerUpserted]) -> Profile:
    profile = blank()
    for event in events:
        profile = apply(profile, event)
    return profile


def test_both_tag_topics_are_supported_and_subscribed() -> None:
    assert {"customer.tags_added", "customer.tags_removed"} <= SUPPORTED_TOPICS
    assert {"customer.tags_added", "customer.tags_removed"} <= set(SUBSCRIPTION_TOPICS)


def test_shopifys_documented_tags_added_payload_translates() -> None:
    event = translate("customer.tags_added", customer_tags(["VIP", "wholesale"]), RECEIVED)

    assert event == CustomerTagsChanged(
        customer_id=str(CUSTOMER_ID),
        tags=("VIP", "wholesale"),
        present=True,
        occurred_at=datetime(2025, 3, 1, 14, 0, tzinfo=UTC),
    )
    assert translate("customer.tags_removed", customer_tags(["VIP"]), RECEIVED).present is False


def test_added_then_removed_leaves_only_what_remains() -> None:
    profile = applied([tags_event(True, ["VIP", "wholesale"], 0), tags_event(False, ["wholesale"], 1)])

    assert profile.customer_tags == ["VIP"]
    assert profile.facts()["customer_tags"] == frozenset({"VIP"})


def test_a_removal_delivered_before_its_older_addition_still_wins() -> None:
    profile = applied([tags_event(False, ["VIP"], 5), tags_event(True, ["VIP"], 1)])

    assert profile.customer_tags == []


def test_a_duplicate_tag_event_changes_nothing() -> None:
    once = applied([tags_event(True, ["VIP"], 0)])

    assert apply(once, tags_event(True, ["VIP"], 0)) is once


def test_tags_are_case_insensitive_as_in_shopify() -> None:
    profile = applied([tags_event(True, ["VIP"], 0), tags_event(False, ["vip"], 1)])

    assert profile.customer_tags == []


def test_an_older_full_tag_list_does_not_undo_a_newer_tag_event() -> None:
    profile = applied([tags_event(True, ["VIP"], 10), snapshot(["wholesale"], 5)])

    assert sorted(profile.customer_tags) == ["VIP", "wholesale"]


def test_a_newer_full_tag_list_removes_tags_it_does_not_list() -> None:
    profile = applied([tags_event(True, ["VIP"], 1), snapshot(["wholesale"], 5)])

    assert profile.customer_tags == ["wholesale"]


def test_a_late_addition_older_than_the_newest_full_list_does_not_bring_back_an_unlisted_tag() -> None:
    profile = applied([snapshot(["wholesale"], 5), tags_event(True, ["VIP"], 1)])

    assert profile.customer_tags == ["wholesale"]


def test_a_pre_2025_customer_update_still_sets_the_tags() -> None:
    event = translate("customers/update", customer_update_2024(), RECEIVED)

    assert sorted(apply(blank(), event).customer_tags) == ["vip", "wholesale"]


TAGS = ["VIP", "wholesale", "newsletter", "b2b"]
observations = st.lists(
    st.one_of(
        st.builds(tags_event, st.booleans(), st.lists(st.sampled_from(TAGS), max_size=3), st.integers(0, 6)),
        st.builds(snapshot, st.lists(st.sampled_from(TAGS), max_size=3), st.integers(0, 6)),
    ),
    max_size=8,
)


def expected_tags(events: list[CustomerTagsChanged | CustomerUpserted]) -> set[str]:
    """Per tag, the newest observation decides; a full list says every tag it omits is absent then; on a tie,
    absent wins."""
    result = set()
    for tag in TAGS:
        seen: list[tuple[datetime, bool]] = []
        for event in events:
            if isinstance(event, CustomerTagsChanged) and tag in event.tags:
                seen.append((event.occurred_at, event.present))
            elif isinstance(event, CustomerUpserted) and event.updated_at is not None:
                seen.append((event.updated_at, tag in (event.tags or ())))
        if seen and max(seen)[1] and (max(seen)[0], False) not in seen:
            result.add(tag)
    return result


@settings(max_examples=300, deadline=None)
@given(events=observations, data=st.data())
def test_customer_tags_are_exact_under_any_delivery_order_and_duplicates(events, data) -> None:
    reordered = data.draw(st.permutations(events))
    duplicated = reordered + data.draw(st.lists(st.sampled_from(events), max_size=4)) if events else reordered

    first = applied(events)
    second = applied(duplicated)

    assert set(first.customer_tags) == expected_tags(events)
    assert set(second.customer_tags) == set(first.customer_tags)


def docs_example(name: str) -> str:
    text = (ROOT / "docs" / "segments.md").read_text()
    match = re.search(rf"<!-- segment-example: {name} -->\s*```yaml\n(.*?)```", text, re.S)
    assert match, f"docs/segments.md has no example {name}"
    return match.group(1)


def test_the_documented_tag_segment_example_loads_and_follows_tag_events() -> None:
    definitions = parse_definitions(docs_example("customer-tags"))
    tagged = applied([tags_event(True, ["VIP"], 0)])
    wholesale_too = apply(tagged, tags_event(True, ["wholesale"], 1))
    untagged_again = apply(tagged, tags_event(False, ["VIP"], 2))

    assert evaluate(tagged.facts(), definitions, RECEIVED).segments == frozenset({"vip_wholesale"})
    assert evaluate(wholesale_too.facts(), definitions, RECEIVED).segments == frozenset()
    assert evaluate(untagged_again.facts(), definitions, RECEIVED).segments == frozenset()
