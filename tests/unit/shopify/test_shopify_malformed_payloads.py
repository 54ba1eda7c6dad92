"""Bodies that lack what their topic needs are refused with a short, PII-free reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evergreen.domain.profile import Profile
from evergreen.shopify.topics import SUPPORTED_TOPICS, MalformedPayload, UnknownTopic, translate
from tests.unit.shopify.order_books import Books, apply
from tests.unit.shopify.shopify_samples_2025_10 import CURRENT_SAMPLES, customer_create, order, refund

RECEIVED = datetime(2025, 10, 1, 12, 0, tzinfo=UTC)
SECRET_EMAIL = "private.person@example.com"


def without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in keys}


@pytest.mark.parametrize(
    ("topic", "body", "field"),
    [
        ("customers/update", without(customer_create(), "id"), "id"),
        ("orders/create", without(order(), "id"), "id"),
        ("orders/paid", without(order(), "created_at"), "created_at"),
        ("orders/updated", without(order(), "total_price", "total_price_set"), "total_price"),
        ("refunds/create", without(refund(), "order_id"), "order_id"),
        ("refunds/create", without(refund(), "id"), "id"),
        ("checkouts/create", {"email": SECRET_EMAIL}, "token"),
        ("customers/redact", {"shop_id": 1}, "customer"),
        ("customers_email_marketing_consent/update", {"customer_id": 1}, "email_marketing_consent"),
    ],
)
def test_a_payload_missing_what_its_topic_needs_is_malformed_and_says_which_field(
    topic: str, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(MalformedPayload) as refused:
        translate(topic, body, RECEIVED)

    assert field in refused.value.reason
    assert refused.value.reason.startswith(topic)
    assert isinstance(refused.value, ValueError)


def test_the_reason_never_repeats_values_from_the_body() -> None:
    body = {**order(email=SECRET_EMAIL), "created_at": SECRET_EMAIL, "id": SECRET_EMAIL + " "}
    body["customer"]["id"] = {"email": SECRET_EMAIL}

    with pytest.raises(MalformedPayload) as refused:
        translate("orders/create", body, RECEIVED)

    assert "private" not in refused.value.reason
    assert "example.com" not in str(refused.value)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1, 2, 3]", b'"a string"', b"\xff\xfe", b"[" * 100_000, b'{"id": 1'],
)
def test_a_body_that_is_not_a_json_object_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        translate("orders/create", body, RECEIVED)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", True),
        ("id", -5),
        ("id", 7.06405506930370084e17),
        ("id", "   "),
        ("total_price", "NaN"),
        ("total_price", "1e400"),
        ("total_price", "12,50"),
        ("created_at", "yesterday"),
        ("created_at", "0001-01-01T00:00:00+05:00"),
        ("test", "maybe"),
    ],
)
def test_garbage_values_in_fields_that_matter_are_malformed(field: str, value: Any) -> None:
    body = without(order(), "total_price_set")
    body[field] = value

    with pytest.raises(MalformedPayload):
        translate("orders/create", body, RECEIVED)


def test_a_naive_timestamp_is_read_as_utc() -> None:
    body = {**order(), "created_at": "2022-01-01T00:00:00", "updated_at": "2022-01-01T00:00:00"}

    event = translate("orders/create", body, RECEIVED)

    assert event.resource_updated_at == datetime(2022, 1, 1, tzinfo=UTC)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["2021-12-31T19:00:00-05:00", "gid://shopify/Customer/1", "12.50", "", "success"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
topics = st.sampled_from(sorted(SUPPORTED_TOPICS)) | st.text(max_size=40)


@st.composite
def mutated_samples(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A real sample for a topic with some fields deleted or replaced by random JSON."""
    topic = draw(st.sampled_from(sorted(CURRENT_SAMPLES)))
    body: dict[str, Any] = CURRENT_SAMPLES[topic]()
    for key in draw(st.lists(st.sampled_from(sorted(body)), max_size=4, unique=True)):
        if draw(st.booleans()):
            del body[key]
        else:
            body[key] = draw(json_values)
    return topic, body


def assert_translates_or_refuses(topic: str, body: Any) -> None:
    try:
        event = translate(topic, body, RECEIVED)
    except (MalformedPayload, UnknownTopic):
        return
    apply(Books(Profile(shop="shop.myshopify.com", customer_id=event.customer_id)), event)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(topic=topics, body=st.dictionaries(st.text(max_size=12), json_values, max_size=6))
def test_random_json_objects_either_translate_or_are_refused_cleanly(topic: str, body: dict[str, Any]) -> None:
    assert_translates_or_refuses(topic, body)
    assert_translates_or_refuses(topic, json.dumps(body).encode())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(topic=topics, body=st.binary(max_size=200) | json_values.map(lambda value: json.dumps(value).encode()))
def test_random_bytes_either_translate_or_are_refused_cleanly(topic: str, body: bytes) -> None:
    assert_translates_or_refuses(topic, body)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(sample=mutated_samples())
def test_damaged_real_shapes_either_translate_and_apply_or_are_refused_cleanly(
    sample: tuple[str, dict[str, Any]],
) -> None:
    topic, body = sample
    assert_translates_or_refuses(topic, body)
    assert_translates_or_refuses(topic, json.dumps(body).encode())
