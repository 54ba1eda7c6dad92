"""The Shopify Admin sandbox answers the backfill's bulk operations like Shopify, and the Admin client
turns every bad answer (throttling, revoked token, failed operation, expired URL) into a clear error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from evergreen.service.backfill import MalformedBulkLine, checkout_payload, customer_payload, order_payload, records
from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify import translate
from evergreen.shopify.admin import DEPRECATED_REASON_HEADER, RUN_BULK_QUERY, ShopifyAdmin, WebhookAdmin
from evergreen.shopify.bulk import (
    AccessDenied,
    AdminError,
    BulkOperationFailed,
    GraphQLError,
    ResultUrlExpired,
    Throttled,
    TokenRevoked,
)
from evergreen_cli.sandboxes import shopify_contracts
from evergreen_cli.sandboxes.shopify_admin import DEFAULT_SCOPES, GRAPHQL_PATH, ShopifySandbox, start_shopify_sandbox
from evergreen_cli.sandboxes.synthetic_shop import synthetic_store

NOW = datetime(2026, 11, 20, tzinfo=UTC)
SHOP = "sandbox-test.myshopify.com"
ORDER = {
    "id": "gid://shopify/Order/11",
    "email": "ada@example.com",
    "createdAt": "2026-01-02T03:04:05Z",
    "updatedAt": "2026-01-09T00:00:00Z",
    "cancelledAt": None,
    "test": False,
    "displayFinancialStatus": "PARTIALLY_REFUNDED",
    "totalPriceSet": {"shopMoney": {"amount": "100.00", "currencyCode": "EUR"}},
    "customer": {"id": "gid://shopify/Customer/5"},
    "refunds": [
        {
            "id": "gid://shopify/Refund/21",
            "createdAt": "2026-01-08T00:00:00Z",
            "transactions": {
                "edges": [
                    {
                        "node": {
                            "id": "gid://shopify/OrderTransaction/31",
                            "kind": "REFUND",
                            "status": "SUCCESS",
                            "amountSet": {"shopMoney": {"amount": "30.00", "currencyCode": "EUR"}},
                        }
                    },
                    {
                        "node": {
                            "id": "gid://shopify/OrderTransaction/32",
                            "kind": "REFUND",
                            "status": "FAILURE",
                            "amountSet": {"shopMoney": {"amount": "50.00", "currencyCode": "EUR"}},
                        }
                    },
                ]
            },
        }
    ],
}
CUSTOMER = {
    "id": "gid://shopify/Customer/5",
    "email": "Ada@Example.com",
    "phone": None,
    "state": "ENABLED",
    "createdAt": "2025-01-01T00:00:00Z",
    "updatedAt": "2026-01-01T00:00:00Z",
    "tags": ["vip-manual"],
    "emailMarketingConsent": {
        "marketingState": "UNSUBSCRIBED",
        "marketingOptInLevel": "SINGLE_OPT_IN",
        "consentUpdatedAt": "2025-06-01T00:00:00Z",
    },
    "smsMarketingConsent": None,
}

CHECKOUT = {
    "id": "gid://shopify/AbandonedCheckout/41",
    "createdAt": "2026-11-18T09:00:00Z",
    "updatedAt": "2026-11-18T09:30:00Z",
    "completedAt": None,
    "customer": {"id": "gid://shopify/Customer/5"},
}
OLD_CHECKOUT = {**CHECKOUT, "id": "gid://shopify/AbandonedCheckout/42", "updatedAt": "2026-09-01T00:00:00Z"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ShopifySandbox]:
    server = start_shopify_sandbox(port=0)
    yield server
    server.stop()


@pytest.fixture
def admin(sandbox: ShopifySandbox) -> Iterator[ShopifyAdmin]:
    sandbox.load({"shop": SHOP, "customers": [CUSTOMER], "orders": [ORDER], "abandonedCheckouts": [CHECKOUT]})
    sandbox.state.faults.clear()
    with ShopifyAdmin(SHOP, "shpat_test", base_url=sandbox.url, sleep=lambda _: None, max_attempts=3) as client:
        yield client


def completed(admin: ShopifyAdmin, root: str) -> list[bytes]:
    operation = admin.run_bulk_query(root)
    done = admin.wait(operation.id, poll_every_s=0)
    assert done.url is not None
    return [line for _, line in admin.stream_lines(done.url)]


def test_the_pinned_api_version_is_the_only_graphql_path(sandbox, admin):
    assert f"/admin/api/{SHOPIFY_API_VERSION}/graphql.json" == GRAPHQL_PATH
    other = httpx.post(f"{sandbox.url}/admin/api/2023-01/graphql.json", json={"query": "{ shop { id } }"})
    assert other.status_code == 404


def test_a_bulk_order_query_yields_one_line_per_order_with_each_refunds_total(admin):
    lines = [json.loads(line) for line in completed(admin, "orders")]

    assert [line["id"] for line in lines] == [ORDER["id"]]
    assert lines[0]["refunds"] == [
        {
            "id": "gid://shopify/Refund/21",
            "createdAt": "2026-01-08T00:00:00Z",
            "totalRefundedSet": {"shopMoney": {"amount": "30.00", "currencyCode": "EUR"}},
        }
    ]


def test_a_joined_order_translates_to_the_same_event_a_webhook_gives(admin):
    (record,) = list(records(iter(enumerate(completed(admin, "orders"), start=1))))
    event = translate("orders/updated", order_payload(record.root), NOW)

    assert event.order_id == "11" and event.customer_id == "5"
    assert [refund.amount for refund in event.refunds] == [30]
    assert event.financial_status == "partially_refunded" and event.currency == "EUR"


def test_a_bulk_customer_keeps_its_consent_and_its_timestamp(admin):
    (record,) = list(records(iter(enumerate(completed(admin, "customers"), start=1))))
    event = translate("customers/update", customer_payload(record.root), NOW)

    assert event.email_consent is not None and event.email_consent.state == "unsubscribed"
    assert event.tags == ("vip-manual",) and event.state == "enabled"


def test_a_bulk_abandoned_checkout_query_yields_the_checkouts_updated_since_its_bound(sandbox, admin):
    sandbox.load({"shop": SHOP, "customers": [CUSTOMER], "abandonedCheckouts": [OLD_CHECKOUT, CHECKOUT]})

    operation = admin.wait(admin.run_bulk_query("abandonedCheckouts", since="2026-10-21T00:00:00Z").id, poll_every_s=0)

    assert operation.url is not None
    assert [json.loads(line) for _, line in admin.stream_lines(operation.url)] == [CHECKOUT]


def test_a_bulk_abandoned_checkout_translates_to_the_event_a_checkouts_update_webhook_gives(admin):
    (record,) = list(records(iter(enumerate(completed(admin, "abandonedCheckouts"), start=1))))
    event = translate("checkouts/update", checkout_payload(record.root), NOW)
    webhook = translate(
        "checkouts/update",
        {
            "id": 41,
            "token": "41",  # the bulk object has no token: the backfill names the checkout by its id
            "customer": {"id": 5},
            "created_at": "2026-11-18T04:00:00-05:00",
            "updated_at": "2026-11-18T04:30:00-05:00",
            "completed_at": None,
        },
        NOW,
    )

    assert event == webhook
    assert event.customer_id == "5" and event.completed_at is None


def test_a_query_the_sandbox_does_not_understand_gets_a_graphql_error(admin):
    with pytest.raises(GraphQLError, match="does not understand"):
        admin.graphql("{ shop { name } }")


def test_a_bulk_query_of_other_checkout_fields_gets_a_graphql_error(admin):
    other = "{ abandonedCheckouts { edges { node { id abandonedCheckoutUrl } } } }"
    with pytest.raises(GraphQLError, match="does not understand this bulk query"):
        admin.graphql(RUN_BULK_QUERY, {"query": other})


def test_a_token_denied_abandoned_checkouts_is_told_about_the_staff_permission():
    denied = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(403)))
    with ShopifyAdmin(SHOP, "shpat_test", base_url="https://sandbox.invalid", http=denied) as client:
        with pytest.raises(AccessDenied, match="manage_abandoned_checkouts") as raised:
            client.run_bulk_query("abandonedCheckouts")
        with pytest.raises(AccessDenied) as orders:
            client.run_bulk_query("orders")
    assert "read_orders" in str(raised.value) and "manage_abandoned_checkouts" not in str(orders.value)


def test_loading_a_store_replaces_the_previous_one_and_bad_stores_are_refused(sandbox):
    assert httpx.post(f"{sandbox.url}/_sandbox/shop", json={"customers": [{"id": 5}]}).status_code == 400
    answer = httpx.post(f"{sandbox.url}/_sandbox/shop", json=synthetic_store(3, seed=2, now=NOW, shop=SHOP))
    assert answer.status_code == 200 and answer.json()["customers"] == 3
    assert len(httpx.get(f"{sandbox.url}/_sandbox/shop").json()["customers"]) == 3


@pytest.mark.parametrize(
    "checkout",
    [
        {**CHECKOUT, "id": "gid://shopify/Checkout/41"},
        {**CHECKOUT, "createdAt": "yesterday"},
        {**CHECKOUT, "customer": {"id": 5}},
    ],
)
def test_a_malformed_abandoned_checkout_is_refused_with_a_reason(sandbox, checkout):
    answer = httpx.post(f"{sandbox.url}/_sandbox/shop", json={"shop": SHOP, "abandonedCheckouts": [checkout]})
    assert answer.status_code == 400 and "abandonedCheckouts[0]" in answer.json()["error"]


def test_a_store_without_abandoned_checkouts_still_loads(sandbox):
    answer = httpx.post(f"{sandbox.url}/_sandbox/shop", json={"shop": SHOP, "customers": [CUSTOMER], "orders": []})
    assert answer.status_code == 200 and answer.json()["abandonedCheckouts"] == 0


def test_requests_are_recorded_without_the_token(sandbox, admin):
    admin.current_bulk_operation()
    recorded = httpx.get(f"{sandbox.url}/_sandbox/requests").json()
    assert recorded[-1]["path"] == GRAPHQL_PATH
    assert "shpat_test" not in json.dumps(recorded)


@pytest.mark.parametrize("kind", ["throttled", "http_429"])
def test_throttling_is_waited_out(sandbox, admin, kind):
    sandbox.fail_next(kind, count=2)
    admin.current_bulk_operation()
    assert admin.throttled_count == 2


def test_throttling_that_does_not_end_is_a_clear_error(sandbox, admin):
    sandbox.fail_next("throttled", count=10)
    with pytest.raises(Throttled):
        admin.current_bulk_operation()


def test_a_revoked_token_is_a_clear_error_that_never_shows_the_token(sandbox, admin):
    sandbox.fail_next("revoked")
    with pytest.raises(TokenRevoked) as raised:
        admin.run_bulk_query("customers")
    assert "shpat_test" not in str(raised.value) and "revoked" in str(raised.value)


@pytest.mark.parametrize("kind", ["bulk_failed", "bulk_canceled"])
def test_a_failed_or_cancelled_operation_is_a_clear_error(sandbox, admin, kind):
    sandbox.fail_next(kind)
    operation = admin.run_bulk_query("orders")
    with pytest.raises(BulkOperationFailed, match=r"FAILED|CANCELED"):
        admin.wait(operation.id, poll_every_s=0)


def test_an_expired_result_url_is_a_clear_error(sandbox, admin):
    operation = admin.wait(admin.run_bulk_query("orders").id, poll_every_s=0)
    sandbox.fail_next("url_expired")
    assert operation.url is not None
    with pytest.raises(ResultUrlExpired):
        list(admin.stream_lines(operation.url))


def test_a_malformed_line_stops_before_its_record_is_yielded():
    lines = [b'{"id": "gid://shopify/Order/1"}', b'{"id": "gid://shopify/Order/2", ']
    grouped = records(iter(enumerate(lines, start=1)))
    with pytest.raises(MalformedBulkLine, match="line 2"):
        list(grouped)


def test_a_child_whose_parent_is_not_the_current_record_is_malformed():
    lines = [b'{"id": "gid://shopify/Order/1"}', b'{"id": "x", "__parentId": "gid://shopify/Refund/9"}']
    with pytest.raises(MalformedBulkLine, match="__parentId"):
        list(records(iter(enumerate(lines, start=1))))


def test_records_end_on_the_line_of_their_last_child():
    lines = [
        b'{"id": "a", "refunds": [{"id": "r"}]}',
        b'{"id": "t", "__parentId": "r"}',
        b'{"id": "b"}',
    ]
    grouped = list(records(iter(enumerate(lines, start=1))))
    assert [(record.root["id"], record.last_line, record.lines) for record in grouped] == [("a", 2, 2), ("b", 3, 1)]


def test_since_reads_only_what_changed_on_or_after_that_instant(sandbox, admin):
    older = {**CUSTOMER, "id": "gid://shopify/Customer/6", "updatedAt": "2024-01-01T00:00:00Z"}
    sandbox.load({"shop": SHOP, "customers": [CUSTOMER, older], "orders": []})

    operation = admin.wait(admin.run_bulk_query("customers", since="2025-06-01T00:00:00Z").id, poll_every_s=0)

    assert operation.url is not None
    assert [json.loads(line)["id"] for _, line in admin.stream_lines(operation.url)] == [CUSTOMER["id"]]


def test_the_stream_resumes_after_the_lines_already_applied(sandbox, admin):
    later = {**ORDER, "id": "gid://shopify/Order/12", "refunds": []}
    sandbox.load(
        {"shop": SHOP, "customers": [CUSTOMER], "orders": [ORDER, later, {**later, "id": "gid://shopify/Order/13"}]}
    )
    operation = admin.wait(admin.run_bulk_query("orders").id, poll_every_s=0)
    assert operation.url is not None
    assert [number for number, _ in admin.stream_lines(operation.url, skip=2)] == [3]


def test_a_loaded_sandbox_answers_only_for_its_shop_as_shopify_would():
    with start_shopify_sandbox(port=0) as sandbox:
        sandbox.load(synthetic_store(2, seed=1, now=NOW, shop=SHOP))
        other = "evergreen-demo.myshopify.com"
        with WebhookAdmin(other, "token", base_url=sandbox.url) as admin, pytest.raises(AdminError) as refused:
            admin.access_scopes()
        with WebhookAdmin(SHOP, "token", base_url=sandbox.url) as admin:
            scopes = admin.access_scopes()

    assert f"no shop {other}" in str(refused.value) and "404" in str(refused.value)
    assert "read_customers" in scopes


def test_shopifys_deprecation_notice_is_logged_once_and_counted_per_call(caplog):
    """Shopify answers `X-Shopify-API-Deprecated-Reason` when a call uses something deprecated."""
    reason = "https://shopify.dev/changelog/some-field-is-deprecated"
    answer = httpx.Response(200, json={"data": {"shop": {"id": "1"}}}, headers={DEPRECATED_REASON_HEADER: reason})
    client = httpx.Client(transport=httpx.MockTransport(lambda request: answer))

    with ShopifyAdmin(SHOP, "shpat_test", http=client) as shopify, caplog.at_level("WARNING"):
        shopify.graphql("{ shop { id } }")
        shopify.graphql("{ shop { id } }")

    assert shopify.deprecations == {reason: 2}
    warnings = [record for record in caplog.records if "deprecated Admin API use" in record.getMessage()]
    assert len(warnings) == 1


# --- the sandbox refuses what Shopify refuses ---------------------------------------------------------------

REFUND_TRANSACTIONS_QUERY = (
    "{ orders { edges { node { id email phone createdAt processedAt updatedAt cancelledAt test "
    "displayFinancialStatus totalPriceSet { shopMoney { amount currencyCode } } customer { id } "
    "refunds { id createdAt transactions { edges { node { "
    "id kind status amountSet { shopMoney { amount currencyCode } } } } } } } } } }"
)
"""The orders bulk query as it was before issue 18: a connection (`transactions`) inside a list field (`refunds`)."""


@pytest.fixture
def with_schema() -> None:
    reason = shopify_contracts.missing_reason()
    if reason is not None:
        pytest.skip(reason)


def test_the_sandbox_refuses_a_connection_inside_a_list_field_with_shopifys_user_error(with_schema, admin):
    answer = admin.graphql(RUN_BULK_QUERY, {"query": REFUND_TRANSACTIONS_QUERY})["bulkOperationRunQuery"]

    assert answer["bulkOperation"] is None
    assert answer["userErrors"] == [
        {
            "field": ["query"],
            "message": "Queries that contain a connection field within a list field are not currently supported.",
            "code": "INVALID",
        }
    ]


def test_the_sandbox_answers_a_document_invalid_against_shopifys_schema_with_a_graphql_error(with_schema, admin):
    with pytest.raises(GraphQLError, match="Cannot query field 'nonsense' on type 'Shop'"):
        admin.graphql("{ shop { nonsense } }")


def test_the_sandbox_keeps_the_group_objects_the_backfill_asked_for(sandbox, admin):
    operation = admin.run_bulk_query("orders")

    assert sandbox.state.operations[operation.id]["_group_objects"] is False


def test_without_read_all_orders_the_sandbox_serves_only_the_last_60_days_of_orders(sandbox, admin):
    recent = {**ORDER, "id": "gid://shopify/Order/12", "createdAt": datetime.now(UTC).isoformat()}
    sandbox.load({"shop": SHOP, "customers": [CUSTOMER], "orders": [ORDER, recent]})
    sandbox.set_app(scopes=["read_customers", "read_orders"])
    try:
        served = [json.loads(line)["id"] for line in completed(admin, "orders")]
    finally:
        sandbox.set_app(scopes=list(DEFAULT_SCOPES))

    assert served == [recent["id"]]
    assert admin.access_scopes() == set(DEFAULT_SCOPES) and "read_all_orders" in DEFAULT_SCOPES
