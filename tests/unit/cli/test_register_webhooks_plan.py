"""What `register-webhooks` decides for each subscription it finds (pure: no Shopify involved)."""

from __future__ import annotations

from evergreen.shopify import COMPLIANCE_TOPICS, SUBSCRIPTION_TOPICS
from evergreen.shopify.admin import WebhookSubscription, topic_enum
from evergreen_cli.commands.register_webhooks import needed_topics, plan, version_mismatches

HERE = "https://here.example.com/webhooks/shopify"
THERE = "https://there.example.com/webhooks/shopify"


def sub(number: int, topic: str, uri: str, format: str = "JSON", version: str = "2025-10") -> WebhookSubscription:
    return WebhookSubscription(f"gid://shopify/WebhookSubscription/{number}", topic, uri, format, version)


def test_topic_names_become_shopifys_enum_values():
    assert topic_enum("orders/create") == "ORDERS_CREATE"
    assert topic_enum("customer.tags_added") == "CUSTOMER_TAGS_ADDED"
    assert topic_enum("customers_email_marketing_consent/update") == "CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE"


def test_every_handled_topic_but_the_compliance_ones_is_needed():
    assert len(needed_topics()) == len(SUBSCRIPTION_TOPICS)
    assert not {topic_enum(topic) for topic in COMPLIANCE_TOPICS} & set(needed_topics())


def test_a_complete_set_here_is_left_alone():
    existing = [sub(n, topic, HERE) for n, topic in enumerate(needed_topics())]

    assert {step.action for step in plan(existing, HERE)} == {"keep"}


def test_one_subscription_here_wins_and_the_same_topic_elsewhere_is_not_touched():
    steps = plan([sub(1, "ORDERS_CREATE", THERE), sub(2, "ORDERS_CREATE", HERE)], HERE, ["ORDERS_CREATE"])

    assert [(step.action, step.subscription_id) for step in steps] == [
        ("keep", "gid://shopify/WebhookSubscription/2"),
        ("other", "gid://shopify/WebhookSubscription/1"),
    ]


def test_a_topic_only_elsewhere_is_moved_here_in_place():
    [step] = plan([sub(1, "ORDERS_CREATE", THERE)], HERE, ["ORDERS_CREATE"])

    assert (step.action, step.subscription_id, step.uri, step.was) == (
        "update",
        "gid://shopify/WebhookSubscription/1",
        HERE,
        THERE,
    )


def test_unneeded_topics_are_deleted_here_and_left_alone_elsewhere():
    steps = plan([sub(1, "PRODUCTS_UPDATE", HERE), sub(2, "PRODUCTS_CREATE", THERE)], HERE, [])

    assert {step.topic: step.action for step in steps} == {"PRODUCTS_UPDATE": "delete", "PRODUCTS_CREATE": "other"}


def test_a_version_other_than_the_pinned_one_is_reported_once():
    existing = [sub(1, "ORDERS_CREATE", HERE, version="2024-01"), sub(2, "ORDERS_PAID", HERE, version="2024-01")]

    assert version_mismatches(existing) == ["2024-01"]
    assert version_mismatches([sub(3, "PRODUCTS_UPDATE", HERE, version="2024-01")]) == [], "not Evergreen's topic"
