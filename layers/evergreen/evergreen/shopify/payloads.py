"""Pydantic models of the Shopify webhook payloads Evergreen reads (Admin API `evergreen.settings.SHOPIFY_API_VERSION`).

Tolerant by design: unknown fields are ignored, and both current and older field sets parse
(ids as big integers or strings, `accepts_marketing` next to `email_marketing_consent`,
money as strings, numbers or `*_set` bags). What a topic truly needs is required, so a
payload without it fails validation and the translator reports it as malformed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

MAX_ABS_AMOUNT = Decimal(10) ** 15
"""Amounts at or beyond this are rejected as garbage rather than carried into sums."""
MIN_AMOUNT_EXPONENT = -12
GID_PREFIX = "gid://"

# Bounds on everything a payload can make Evergreen store (docs/shopify.md, "Bounds"). A value beyond its
# bound is refused with 400 and a reason; nothing is cut short silently.
MAX_TOKEN_CHARS = 255
MAX_EMAIL_CHARS = 254
"""RFC 5321's longest usable address."""
MAX_PHONE_CHARS = 64
MAX_NAME_CHARS = 255
MAX_TAG_CHARS = 255
"""Shopify's own limit for one tag."""
MAX_TAGS = 250
"""Shopify's own limit of tags on one resource."""
MAX_CODE_CHARS = 64
"""States, statuses, currency codes, opt-in levels."""
MAX_TEXT_CHARS = 10_000
"""Free text Evergreen reads but does not store (line item titles, vendors)."""
MAX_REFUNDS = 250
"""Refunds embedded in one order."""
MAX_TRANSACTIONS = 250
"""Transactions in one refund."""
MAX_LISTED_ORDERS = 10_000
"""Order ids listed in one compliance request."""


MAX_ID = 2**64 - 1
"""Shopify ids are positive integers that fit in 64 bits."""
_DECIMAL_ID = re.compile(r"[1-9][0-9]{0,19}")
_GID = re.compile(r"gid://shopify/[A-Za-z][A-Za-z0-9]{0,63}/([1-9][0-9]{0,19})(?:\?[A-Za-z0-9=&_.-]{0,200})?")
_PLAIN_AMOUNT = re.compile(r"-?[0-9]{1,16}(?:\.[0-9]{1,12})?")
"""An amount as Shopify writes one in a string: ASCII digits, an optional sign and fraction, nothing around it."""


def _to_id(value: Any) -> str:
    """Exact string form of a Shopify id: a positive decimal integer that fits in 64 bits (a JSON number or its
    digits as a string), or a gid naming one (`gid://shopify/Customer/123`), which loses its prefix."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("an id must be an integer or a string")
    if isinstance(value, int):
        digits = str(value) if value > 0 else ""
    else:
        gid = _GID.fullmatch(value)
        digits = gid.group(1) if gid else value
    if not _DECIMAL_ID.fullmatch(digits) or int(digits) > MAX_ID:
        raise PydanticCustomError("invalid_id", "not a positive 64-bit integer or its gid")
    return digits


def _to_token(value: Any) -> str:
    """A checkout token (or, from a bulk query, the checkout's gid or id, which stands in for it)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _to_id(value)
    if not isinstance(value, str):
        raise ValueError("a token must be a string")
    cleaned = value.strip()
    if cleaned.startswith(GID_PREFIX):
        cleaned = _to_id(cleaned)
    if not cleaned:
        raise ValueError("a token must not be blank")
    return str(_at_most(MAX_TOKEN_CHARS)(cleaned))


def _to_amount(value: Any) -> Decimal:
    """Exact Decimal from a JSON string or number (floats go through their shortest repr)."""
    if isinstance(value, bool):
        raise ValueError("an amount must be a number or a numeric string")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("an amount must be finite")
        value = repr(value)
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        if not _PLAIN_AMOUNT.fullmatch(value):
            raise ValueError("an amount must be a plain decimal number or string")
        try:
            amount = Decimal(value)
        except InvalidOperation as error:
            raise ValueError("an amount must be a number or a numeric string") from error
    elif isinstance(value, Decimal):
        amount = value
    else:
        raise ValueError("an amount must be a number or a numeric string")
    if not amount.is_finite() or abs(amount) >= MAX_ABS_AMOUNT:
        raise ValueError("an amount must be finite and of a sensible size")
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < MIN_AMOUNT_EXPONENT:
        raise ValueError("an amount has too many decimal places")
    return amount


def _to_utc(value: datetime) -> datetime:
    """UTC instant; a timestamp without offset is read as UTC."""
    try:
        if value.tzinfo is None or value.utcoffset() is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("timestamp out of range") from error


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _at_most(limit: int) -> Callable[[Any], Any]:
    """A validator refusing a string or list longer than `limit` (error type `too_long`, no value shown)."""

    def check(value: Any) -> Any:
        if isinstance(value, str | list) and len(value) > limit:
            raise PydanticCustomError("too_long", "longer than {limit}", {"limit": limit})
        return value

    return check


def _tag_list(value: Any) -> Any:
    """Shopify sends tags as one comma-separated string; accept a list too. Bounded per tag and in number."""
    if value is None:
        return None
    if isinstance(value, str):
        tags = [tag.strip() for tag in value.split(",") if tag.strip()]
    elif isinstance(value, list):
        tags = [tag.strip() for tag in value if isinstance(tag, str) and tag.strip()]
    else:
        raise ValueError("tags must be a string or a list of strings")
    _at_most(MAX_TAGS)(tags)
    for tag in tags:
        _at_most(MAX_TAG_CHARS)(tag)
    return tags


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _none_to_empty(value: Any) -> Any:
    return [] if value is None else value


def _none_to_false(value: Any) -> Any:
    return False if value is None else value


def _not_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise PydanticCustomError("negative", "must not be negative")
    return value


ShopifyId = Annotated[str, BeforeValidator(_to_id)]
NonNegativeAmount = Annotated[Decimal, BeforeValidator(_to_amount), AfterValidator(_not_negative)]
"""Order totals and refund transactions: Shopify never sends a negative one, so one is refused."""
UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]
_Blank = BeforeValidator(_blank_to_none)
Text = Annotated[str | None, BeforeValidator(_at_most(MAX_TEXT_CHARS)), _Blank]
"""Optional free text that is read but not stored; blank becomes None."""
Email = Annotated[str | None, BeforeValidator(_at_most(MAX_EMAIL_CHARS)), _Blank]
Phone = Annotated[str | None, BeforeValidator(_at_most(MAX_PHONE_CHARS)), _Blank]
Name = Annotated[str | None, BeforeValidator(_at_most(MAX_NAME_CHARS)), _Blank]
Token = Annotated[str | None, BeforeValidator(_at_most(MAX_TOKEN_CHARS)), _Blank]
Code = Annotated[str | None, BeforeValidator(_at_most(MAX_CODE_CHARS)), _Blank]
LowerText = Annotated[str | None, BeforeValidator(_lower), BeforeValidator(_at_most(MAX_CODE_CHARS)), _Blank]
"""A short code (state, status, kind), lower-cased."""
Tags = Annotated[list[str] | None, BeforeValidator(_tag_list)]
Flag = Annotated[bool, BeforeValidator(_none_to_false)]


class Payload(BaseModel):
    """Base for every payload model: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Money(Payload):
    amount: NonNegativeAmount
    currency_code: Code = Field(None, validation_alias=AliasChoices("currency_code", "currencyCode", "currency"))


class MoneyBag(Payload):
    """Shopify's `*_set`: the same amount in shop and presentment currency."""

    shop_money: Money | None = None
    presentment_money: Money | None = None


def _degrees(limit: float) -> Callable[[Any], float | None]:
    """A latitude (limit 90) or longitude (180) as a float; anything else (null, blank, garbage) is None.

    Shopify geocodes addresses itself and sends null when it could not; a coordinate is never worth refusing
    an order for, so one that is not a number within range is treated as unknown.
    """

    def check(value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        try:
            degrees = float(value)
        except ValueError:
            return None
        return degrees if math.isfinite(degrees) and -limit <= degrees <= limit else None

    return check


class AddressPayload(Payload):
    """A customer's `default_address` or an order's `shipping_address` (REST names; GraphQL names accepted)."""

    country_code: Code = Field(None, validation_alias=AliasChoices("country_code", "countryCodeV2", "countryCode"))
    province_code: Code = Field(None, validation_alias=AliasChoices("province_code", "provinceCode"))
    city: Name = None
    zip: Code = None
    latitude: Annotated[float | None, BeforeValidator(_degrees(90))] = None
    longitude: Annotated[float | None, BeforeValidator(_degrees(180))] = None


class DiscountCodePayload(Payload):
    """One entry of an order's `discount_codes`."""

    code: Code = None


class MarketingConsent(Payload):
    """`email_marketing_consent` / `sms_marketing_consent` objects."""

    state: LowerText = None
    opt_in_level: LowerText = None
    consent_updated_at: UtcDatetime | None = None


class CustomerPayload(Payload):
    """customers/create|update|enable|disable. Pre-2025-01 shapes add tags and consents."""

    id: ShopifyId
    email: Email = None
    phone: Phone = None
    first_name: Name = None
    last_name: Name = None
    state: LowerText = None
    tags: Tags = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    email_marketing_consent: MarketingConsent | None = None
    sms_marketing_consent: MarketingConsent | None = None
    accepts_marketing: bool | None = None
    """Legacy (removed in 2024-01): email marketing as a boolean."""
    accepts_marketing_updated_at: UtcDatetime | None = None
    default_address: AddressPayload | None = None


class CustomerTagsPayload(Payload):
    """customer.tags_added / customer.tags_removed (GraphQL-style: a gid, the tags changed, when).

    Shopify's documented example: `{"customerId": "gid://shopify/Customer/1", "tags": ["tag1", "tag2"],
    "occurredAt": "2023-06-01T12:00:00-04:00"}`.
    """

    customer_id: ShopifyId = Field(validation_alias=AliasChoices("customerId", "customer_id"))
    tags: Annotated[list[str], BeforeValidator(_tag_list)]
    occurred_at: UtcDatetime = Field(validation_alias=AliasChoices("occurredAt", "occurred_at"))


class CustomerSegmentPayload(Payload):
    """customer.joined_segment / customer.left_segment. Shopify's documented example (2025-10):
    `{"shop_id": "gid://shopify/Shop/1", "customer_id": "gid://shopify/Customer/2",
    "segment_id": "gid://shopify/Segment/3"}`."""

    customer_id: ShopifyId = Field(validation_alias=AliasChoices("customer_id", "customerId"))
    segment_id: ShopifyId = Field(validation_alias=AliasChoices("segment_id", "segmentId"))


class CustomerRef(Payload):
    """A customer embedded in an order or checkout; may be absent, empty or redacted."""

    id: ShopifyId | None = None
    email: Email = None
    phone: Phone = None
    first_name: Name = None
    last_name: Name = None


class CustomerDeletePayload(Payload):
    id: ShopifyId


class EmailConsentUpdatePayload(Payload):
    """customers_email_marketing_consent/update."""

    customer_id: ShopifyId = Field(validation_alias=AliasChoices("customer_id", "id"))
    email_address: Email = None
    email_marketing_consent: MarketingConsent


class SmsConsentUpdatePayload(Payload):
    """customers_marketing_consent/update (SMS)."""

    id: ShopifyId = Field(validation_alias=AliasChoices("id", "customer_id"))
    phone: Phone = None
    sms_marketing_consent: MarketingConsent


class PurchasingSummaryPayload(Payload):
    """customers/purchasing_summary (2025-01+): GraphQL-style camelCase with gids."""

    customer_id: ShopifyId = Field(validation_alias=AliasChoices("customerId", "customer_id"))
    number_of_orders: int | None = Field(None, validation_alias=AliasChoices("numberOfOrders", "number_of_orders"))
    amount_spent: Money | None = Field(None, validation_alias=AliasChoices("amountSpent", "amount_spent"))
    last_order_id: ShopifyId | None = Field(None, validation_alias=AliasChoices("lastOrderId", "last_order_id"))
    occurred_at: UtcDatetime | None = Field(None, validation_alias=AliasChoices("occurredAt", "occurred_at"))


BULK_OPERATION_GID = r"^gid://shopify/BulkOperation/[0-9]{1,20}$"


class BulkOperationFinishedPayload(Payload):
    """bulk_operations/finish: one of this app's bulk operations on the shop completed, failed or was cancelled."""

    admin_graphql_api_id: str = Field(pattern=BULK_OPERATION_GID)
    status: LowerText = None
    error_code: LowerText = None
    type: LowerText = None
    completed_at: UtcDatetime | None = None


class LineItemPayload(Payload):
    """Order line items carry product_id, vendor and title; `product_type` is usually absent."""

    product_id: ShopifyId | None = None
    product_type: Name = None
    vendor: Name = None
    title: Text = None


class TransactionPayload(Payload):
    id: ShopifyId | None = None
    kind: LowerText = None
    status: LowerText = None
    amount: NonNegativeAmount | None = None
    amount_set: MoneyBag | None = None
    currency: Code = None

    @property
    def money(self) -> tuple[Decimal, str | None]:
        """Shop money when the payload gives it, else the plain amount and its currency."""
        shop = self.amount_set.shop_money if self.amount_set else None
        if shop is not None:
            return shop.amount, shop.currency_code
        return self.amount or Decimal(0), self.currency

    @property
    def is_successful_refund(self) -> bool:
        return self.kind == "refund" and self.status == "success"


class RefundPayload(Payload):
    """refunds/create, and the `refunds[]` embedded in order payloads."""

    id: ShopifyId
    order_id: ShopifyId | None = None
    created_at: UtcDatetime | None = None
    processed_at: UtcDatetime | None = None
    transactions: Annotated[
        list[TransactionPayload], BeforeValidator(_at_most(MAX_TRANSACTIONS)), BeforeValidator(_none_to_empty)
    ] = Field(default_factory=list)

    def refunded(self) -> tuple[Decimal, str | None]:
        """Money that went back: the sum of successful refund transactions."""
        total = Decimal(0)
        currency: str | None = None
        for transaction in self.transactions:
            if transaction.is_successful_refund:
                amount, transaction_currency = transaction.money
                total += amount
                currency = currency or transaction_currency
        return total, currency


class OrderPayload(Payload):
    """orders/create|paid|updated|cancelled|fulfilled."""

    id: ShopifyId
    email: Email = None
    contact_email: Email = None
    phone: Phone = None
    customer: CustomerRef | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime | None = None
    cancelled_at: UtcDatetime | None = None
    financial_status: LowerText = None
    test: Flag = False
    checkout_token: Token = None
    currency: Code = None
    total_price: NonNegativeAmount | None = None
    total_price_set: MoneyBag | None = None
    tags: Tags = None
    line_items: Annotated[list[LineItemPayload], BeforeValidator(_none_to_empty)] = Field(default_factory=list)
    shipping_address: AddressPayload | None = None
    discount_codes: Annotated[
        list[DiscountCodePayload], BeforeValidator(_at_most(MAX_TAGS)), BeforeValidator(_none_to_empty)
    ] = Field(default_factory=list)
    refunds: Annotated[list[RefundPayload], BeforeValidator(_at_most(MAX_REFUNDS)), BeforeValidator(_none_to_empty)] = (
        Field(default_factory=list)
    )

    def total(self) -> tuple[Decimal, str | None] | None:
        """The original order total in shop money, else `total_price` in `currency`."""
        shop = self.total_price_set.shop_money if self.total_price_set else None
        if shop is not None:
            return shop.amount, shop.currency_code or self.currency
        if self.total_price is not None:
            return self.total_price, self.currency
        return None


class CheckoutPayload(Payload):
    """checkouts/create|update (abandoned-checkout objects)."""

    token: Annotated[str, BeforeValidator(_to_token)]
    email: Email = None
    phone: Phone = None
    customer: CustomerRef | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None


class ComplianceCustomer(Payload):
    id: ShopifyId | None = None
    email: Email = None
    phone: Phone = None


class DataRequest(Payload):
    id: ShopifyId | None = None


class DataRequestPayload(Payload):
    """customers/data_request."""

    shop_id: ShopifyId | None = None
    shop_domain: Name = None
    customer: ComplianceCustomer
    orders_requested: Annotated[
        list[ShopifyId], BeforeValidator(_at_most(MAX_LISTED_ORDERS)), BeforeValidator(_none_to_empty)
    ] = Field(default_factory=list)
    data_request: DataRequest | None = None


class CustomerRedactPayload(Payload):
    """customers/redact."""

    shop_id: ShopifyId | None = None
    shop_domain: Name = None
    customer: ComplianceCustomer
    orders_to_redact: Annotated[
        list[ShopifyId], BeforeValidator(_at_most(MAX_LISTED_ORDERS)), BeforeValidator(_none_to_empty)
    ] = Field(default_factory=list)


class ShopRedactPayload(Payload):
    """shop/redact."""

    shop_id: ShopifyId | None = None
    shop_domain: Name = None
