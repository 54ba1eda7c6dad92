"""A synthetic Shopify store in the Admin GraphQL shape the Shopify sandbox loads (docs/local-stack.md).

Realistic histories from a seed: power-law order counts (most customers order once or never, a few
dozens of times), some lapsed (nothing for 180+ days), refunds (some only pending), cancellations,
test orders, guest checkouts (orders with an email and no customer) and unsubscribed customers; and
abandoned checkouts: some open from the last few days, some an order followed, some completed, some
older than the backfill reads (drawn from their own random stream, so a seed's customers and orders stay
what they were before checkouts were added).
`synthetic_engagement` gives the same customers an email engagement history for the Klaviyo sandbox
(`POST /_sandbox/engagement`): recent and old opens and clicks, some never opened, some bounced or marked
as spam, and an unsubscribe for each unsubscribed customer.
`expected_facts` is the store's own arithmetic, independent of Evergreen's reducers, for tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from evergreen.domain.profile import customer_profile_key, guest_profile_key

DEFAULT_SHOP = "evergreen-demo.myshopify.com"
MAX_ORDERS = 60
LAPSED_SHARE = 0.25
GUEST_ORDER_SHARE = 0.08
UNSUBSCRIBED_SHARE = 0.12
CHECKOUT_SHARES = (("open", 0.05), ("ordered", 0.05), ("completed", 0.03), ("old", 0.03))
"""Per customer: an open checkout 1-3 days old; one placed hours before the customer's latest order (when that
order is within 30 days); a completed one 1-3 days old; an open one 40-200 days old. The rest: none."""
PLACES = (
    ("CA", "ON", "Ottawa", "K1P", 45.4215, -75.6972, 0.30),
    ("CA", "ON", "Toronto", "M5V", 43.6532, -79.3832, 0.25),
    ("CA", "QC", "Montréal", "H2X", 45.5019, -73.5674, 0.20),
    ("US", "NY", "New York", "10001", 40.7128, -74.0060, 0.15),
    ("GB", "ENG", "London", "SW1A", 51.5072, -0.1276, 0.10),
)
"""Where customers live (country, province, city, postal prefix, latitude, longitude, share): three countries,
two Canadian provinces; the demo shop is in Ottawa, so about a third of its customers are local."""


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ExpectedFacts:
    orders_count: int
    net_spent: Decimal
    last_order_at: datetime | None
    email_consent: str
    open_checkout_at: datetime | None = None
    """The last activity of the latest checkout neither completed nor followed by an order (of any age)."""
    city: str | None = None
    """The newest counted order's shipping city, else the customer's default address's."""
    discount_codes: frozenset[str] = frozenset()


def _money(amount: Decimal) -> dict[str, Any]:
    return {"shopMoney": {"amount": f"{amount:.2f}", "currencyCode": "USD"}}


def _order_count(rng: random.Random) -> int:
    if rng.random() < 0.2:
        return 0
    return min(MAX_ORDERS, int(rng.paretovariate(1.3)))


def _consent(rng: random.Random, since: datetime, now: datetime) -> dict[str, Any]:
    draw = rng.random()
    state = "UNSUBSCRIBED" if draw < UNSUBSCRIBED_SHARE else "SUBSCRIBED" if draw < 0.75 else "NOT_SUBSCRIBED"
    at = since + (now - since) * rng.random()
    return {"marketingState": state, "marketingOptInLevel": "SINGLE_OPT_IN", "consentUpdatedAt": iso(at)}


def _order(
    rng: random.Random, number: int, at: datetime, now: datetime, customer_id: str | None, email: str
) -> dict[str, Any]:
    total = Decimal(str(round(rng.lognormvariate(4.0, 0.8), 2))).quantize(Decimal("0.01"))
    total = max(total, Decimal("1.00"))
    cancelled = rng.random() < 0.05
    test = rng.random() < 0.01
    refunds: list[dict[str, Any]] = []
    status = "PAID"
    updated = at + timedelta(hours=rng.randint(1, 72))
    if not cancelled and rng.random() < 0.1:
        refunded = (total * Decimal(str(rng.choice([0.25, 0.5, 1.0])))).quantize(Decimal("0.01"))
        refund_at = at + timedelta(days=rng.randint(1, 20))
        updated = max(updated, refund_at)
        pending = rng.random() < 0.2
        refunds.append(
            {
                "id": f"gid://shopify/Refund/{number}",
                "createdAt": iso(refund_at),
                "transactions": {
                    "edges": [
                        {
                            "node": {
                                "id": f"gid://shopify/OrderTransaction/{number}",
                                "kind": "REFUND",
                                "status": "PENDING" if pending else "SUCCESS",
                                "amountSet": _money(refunded),
                            }
                        }
                    ]
                },
            }
        )
        if not pending:
            status = "REFUNDED" if refunded == total else "PARTIALLY_REFUNDED"
    cancelled_at = at + timedelta(hours=rng.randint(1, 48)) if cancelled else None
    if cancelled_at is not None:
        status = "VOIDED"
        updated = max(updated, cancelled_at)
    return {
        "id": f"gid://shopify/Order/{number}",
        "email": email,
        "phone": None,
        "createdAt": iso(at),
        "processedAt": iso(at),
        "updatedAt": iso(min(updated, now)),
        "cancelledAt": iso(cancelled_at) if cancelled_at else None,
        "test": test,
        "displayFinancialStatus": status,
        "totalPriceSet": _money(total),
        "customer": {"id": customer_id} if customer_id else None,
        "refunds": refunds,
    }


def synthetic_store(
    customers: int, seed: int = 1, now: datetime | None = None, shop: str = DEFAULT_SHOP
) -> dict[str, Any]:
    """A store of `customers` customers with their orders (and some guest orders), reproducible from `seed`."""
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    customer_nodes: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    order_number = 5_000_000
    for index in range(customers):
        customer_id = f"gid://shopify/Customer/{7_000_000 + index}"
        email = f"customer{seed}-{index}@example.com"
        created = now - timedelta(days=rng.randint(30, 1_500), minutes=rng.randint(0, 1_439))
        lapsed = rng.random() < LAPSED_SHARE
        last_at = now - timedelta(
            days=rng.randint(185, 700) if lapsed else rng.randint(0, 170), hours=rng.randint(0, 23)
        )
        last_at = max(last_at, created + timedelta(hours=1))
        count = _order_count(rng)
        for position in range(count):
            at = last_at if position == count - 1 else created + (last_at - created) * rng.random()
            order_number += 1
            orders.append(_order(rng, order_number, at, now, customer_id, email))
        customer_nodes.append(
            {
                "id": customer_id,
                "email": email,
                "phone": f"+1555{index % 10_000_000:07d}" if rng.random() < 0.4 else None,
                "state": "ENABLED" if rng.random() < 0.7 else "DISABLED",
                "createdAt": iso(created),
                "updatedAt": iso(min(now, created + timedelta(days=rng.randint(0, 30)))),
                "tags": rng.sample(["wholesale", "newsletter", "referral", "loyalty"], rng.randint(0, 2)),
                "emailMarketingConsent": _consent(rng, created, now),
                "smsMarketingConsent": None,
            }
        )
        if rng.random() < GUEST_ORDER_SHARE * 3:
            order_number += 1
            guest_at = now - timedelta(days=rng.randint(0, 600))
            orders.append(_order(rng, order_number, guest_at, now, None, f"guest{seed}-{index}@example.com"))
    _place(random.Random(f"places:{seed}"), customer_nodes, orders)
    rng.shuffle(orders)
    checkouts = _abandoned_checkouts(random.Random(f"checkouts:{seed}"), customer_nodes, orders, now)
    return {"shop": shop, "customers": customer_nodes, "orders": orders, "abandonedCheckouts": checkouts}


def _address(rng: random.Random, place: tuple[str, str, str, str, float, float, float]) -> dict[str, Any]:
    """A MailingAddress in `place`, within about 5 km of its centre (Shopify's own geocoding stands in)."""
    country, province, city, prefix, latitude, longitude, _ = place
    return {
        "countryCodeV2": country,
        "provinceCode": province,
        "city": city,
        "zip": f"{prefix}{rng.randint(0, 9)}{rng.choice('ABCEGHJ')}{rng.randint(0, 9)}" if country == "CA" else prefix,
        "latitude": round(latitude + rng.uniform(-0.04, 0.04), 5),
        "longitude": round(longitude + rng.uniform(-0.04, 0.04), 5),
    }


def _place(rng: random.Random, customers: list[dict[str, Any]], orders: list[dict[str, Any]]) -> None:
    """Give every customer a home among PLACES (its default address), and every order a shipping address: the
    customer's home, or somewhere else one order in ten (a gift). From its own random stream, so a seed's
    customers and orders stay what they were before addresses were added."""
    weights = [place[-1] for place in PLACES]
    homes: dict[str, tuple[str, str, str, str, float, float, float]] = {}
    for customer in customers:
        homes[customer["id"]] = rng.choices(PLACES, weights)[0]
        customer["defaultAddress"] = _address(rng, homes[customer["id"]])
    for order in orders:
        owner = order["customer"]["id"] if order["customer"] else None
        home = homes.get(owner) if owner else None
        place = home if home is not None and rng.random() >= 0.1 else rng.choices(PLACES, weights)[0]
        order["shippingAddress"] = _address(rng, place)
        order["discountCodes"] = ["WELCOME10"] if rng.random() < 0.15 else []


def _checkout_kind(rng: random.Random) -> str | None:
    draw = rng.random()
    for kind, share in CHECKOUT_SHARES:
        if draw < share:
            return kind
        draw -= share
    return None


def _abandoned_checkouts(
    rng: random.Random, customers: list[dict[str, Any]], orders: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    latest_order: dict[str, datetime] = {}
    for order in orders:
        if order["customer"]:
            at = datetime.fromisoformat(order["createdAt"])
            latest_order[order["customer"]["id"]] = max(at, latest_order.get(order["customer"]["id"], at))
    checkouts: list[dict[str, Any]] = []
    for customer in customers:
        kind = _checkout_kind(rng)
        last_activity = now - timedelta(hours=rng.randint(25, 70), minutes=rng.randint(0, 59))
        if kind == "old":
            last_activity = now - timedelta(days=rng.randint(40, 200), hours=rng.randint(0, 23))
        elif kind == "ordered":
            ordered_at = latest_order.get(customer["id"])
            if ordered_at is None or ordered_at < now - timedelta(days=30):
                continue
            last_activity = ordered_at - timedelta(hours=rng.randint(1, 10))
        elif kind is None:
            continue
        created = last_activity - timedelta(minutes=rng.randint(1, 90))
        checkouts.append(
            {
                "id": f"gid://shopify/AbandonedCheckout/{30_000_000 + len(checkouts)}",
                "createdAt": iso(created),
                "updatedAt": iso(last_activity),
                "completedAt": iso(last_activity) if kind == "completed" else None,
                "customer": {"id": customer["id"]},
            }
        )
    return checkouts


def _counted(order: dict[str, Any]) -> bool:
    return not (order["cancelledAt"] or order["test"] or order["displayFinancialStatus"] == "VOIDED")


def _refunded(order: dict[str, Any]) -> Decimal:
    total = Decimal(0)
    for refund in order.get("refunds") or []:
        for edge in refund["transactions"]["edges"]:
            node = edge["node"]
            if node["kind"] == "REFUND" and node["status"] == "SUCCESS":
                total += Decimal(node["amountSet"]["shopMoney"]["amount"])
    return total


def expected_facts(store: dict[str, Any]) -> dict[str, ExpectedFacts]:
    """Per profile key (`customer#<id>` or `guest#<email>`): what the store's own numbers say."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    consent: dict[str, str] = {}
    homes: dict[str, str | None] = {}
    for customer in store["customers"]:
        key = customer_profile_key(customer["id"].rsplit("/", 1)[-1])
        by_key[key] = []
        homes[key] = (customer.get("defaultAddress") or {}).get("city")
        consent[key] = (customer.get("emailMarketingConsent") or {}).get("marketingState", "unknown").lower()
    for order in store["orders"]:
        customer = order.get("customer")
        key = (
            customer_profile_key(customer["id"].rsplit("/", 1)[-1])
            if customer
            else guest_profile_key(order["email"].lower())
        )
        by_key.setdefault(key, []).append(order)
    open_checkouts = _open_checkout_activity(store)
    facts: dict[str, ExpectedFacts] = {}
    for key, orders in by_key.items():
        counted = [order for order in orders if _counted(order)]
        spent = sum((Decimal(o["totalPriceSet"]["shopMoney"]["amount"]) - _refunded(o) for o in counted), Decimal(0))
        last = max((datetime.fromisoformat(o["createdAt"]) for o in counted), default=None)
        placed = max((datetime.fromisoformat(o["createdAt"]) for o in orders), default=None)
        # Any order (counted or not) placed at or after a checkout's last activity ends that checkout.
        open_at = max((at for at in open_checkouts.get(key, ()) if placed is None or placed < at), default=None)
        shipped = [o for o in counted if o.get("shippingAddress")]
        newest = max(shipped, key=lambda o: (datetime.fromisoformat(o["createdAt"]), o["id"]), default=None)
        city = newest["shippingAddress"]["city"] if newest else homes.get(key)
        codes = frozenset(code for o in counted for code in o.get("discountCodes") or ())
        facts[key] = ExpectedFacts(len(counted), spent, last, consent.get(key, "unknown"), open_at, city, codes)
    return facts


def _open_checkout_activity(store: dict[str, Any]) -> dict[str, list[datetime]]:
    """Per customer's profile key, the last activity of each checkout not completed (a guest's names nobody)."""
    found: dict[str, list[datetime]] = {}
    for checkout in store.get("abandonedCheckouts") or []:
        if checkout.get("customer") and not checkout.get("completedAt"):
            key = customer_profile_key(checkout["customer"]["id"].rsplit("/", 1)[-1])
            found.setdefault(key, []).append(datetime.fromisoformat(checkout["updatedAt"] or checkout["createdAt"]))
    return found


ENGAGEMENT_SHARES = (("recent", 0.35), ("lapsing", 0.25), ("old", 0.25), ("never", 0.15))
"""Last open within 30 days (engaged), 30 to 90 days ago, 90 to 360 days ago (unengaged if subscribed), never."""
BOUNCED_SHARE = 0.02
SPAM_SHARE = 0.01


def _engagement_kind(rng: random.Random) -> str:
    draw = rng.random()
    for kind, share in ENGAGEMENT_SHARES:
        if draw < share:
            return kind
        draw -= share
    return ENGAGEMENT_SHARES[-1][0]


def synthetic_engagement(store: dict[str, Any], seed: int = 1, now: datetime | None = None) -> list[dict[str, Any]]:
    """The store's customers' email engagement, as the Klaviyo sandbox's history entries, reproducible from `seed`."""
    rng = random.Random(f"engagement:{seed}")
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    ranges = {"recent": (0, 29), "lapsing": (31, 89), "old": (91, 360)}
    entries: list[dict[str, Any]] = []

    def event(metric: str, at: datetime, email: str) -> None:
        entries.append({"metric": metric, "datetime": iso(at), "email": email})

    for customer in store["customers"]:
        email = customer.get("email")
        if not email:
            continue
        kind = _engagement_kind(rng)
        if kind in ranges:
            low, high = ranges[kind]
            last_open = now - timedelta(days=rng.randint(low, high), minutes=rng.randint(0, 1_439))
            event("Opened Email", last_open, email)
            for _ in range(rng.randint(0, 3)):
                event("Opened Email", last_open - timedelta(days=rng.randint(1, 120)), email)
            if rng.random() < 0.4:
                event("Clicked Email", last_open, email)
        if rng.random() < BOUNCED_SHARE:
            event("Bounced Email", now - timedelta(days=rng.randint(1, 200)), email)
        elif rng.random() < SPAM_SHARE:
            event("Marked Email as Spam", now - timedelta(days=rng.randint(1, 200)), email)
        consent = customer.get("emailMarketingConsent") or {}
        if consent.get("marketingState") == "UNSUBSCRIBED" and consent.get("consentUpdatedAt"):
            entries.append(
                {"metric": "Unsubscribed from Email Marketing", "datetime": consent["consentUpdatedAt"], "email": email}
            )
    return entries
