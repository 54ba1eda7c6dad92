"""Shopify Admin GraphQL client for the backfill: bulk operations over httpx, at the pinned API version.

- `run_bulk_query` starts a `bulkOperationRunQuery` (customers, orders with their refunds, or abandoned
  checkouts);
- `bulk_operation` / `current_bulk_operation` poll it; `wait` polls until it ends;
- `stream_lines` streams the result JSONL line by line (never the whole file in memory).

Throttling (a `THROTTLED` cost error or a 429) is waited out with back-off, a bounded number of times.
A revoked or wrong token (401), a missing scope (403 / ACCESS_DENIED), a failed or cancelled operation
and an expired result URL each raise their own `AdminError` with a message that names no customer data
and never the token.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify.bulk import (
    AccessDenied,
    AdminError,
    BulkOperation,
    BulkOperationFailed,
    GraphQLError,
    ResultUrlExpired,
    ShopNotFound,
    Throttled,
    TokenRevoked,
)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEPRECATED_REASON_HEADER = "X-Shopify-API-Deprecated-Reason"
"""Shopify's answer header when a request uses something deprecated (a field, or the API version itself)."""
logger = logging.getLogger(__name__)
REQUIRED_SCOPES = ("read_customers", "read_orders")
"""Access scopes the backfill needs. Orders older than 60 days also need `read_all_orders`; abandoned
checkouts need `read_orders` and, on the merchant's side, a user with the `manage_abandoned_checkouts`
permission."""

ADDRESS_FIELDS = "countryCodeV2 provinceCode city zip latitude longitude"
"""What the location facts read from a MailingAddress (Shopify geocodes it: no geocoding of our own)."""

CUSTOMER_FIELDS = """
id email phone state createdAt updatedAt tags
emailMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }
smsMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }
defaultAddress { ADDRESS }
""".strip().replace("ADDRESS", ADDRESS_FIELDS)

ORDER_FIELDS = """
id email phone createdAt processedAt updatedAt cancelledAt test displayFinancialStatus
totalPriceSet { shopMoney { amount currencyCode } }
customer { id }
discountCodes shippingAddress { ADDRESS }
refunds { id createdAt totalRefundedSet { shopMoney { amount currencyCode } } }
""".strip().replace("ADDRESS", ADDRESS_FIELDS)
"""An order's refunds are a list field, and bulk operations refuse a connection inside a list field (a refund's
`transactions`), so each refund is read by its total: the sum of its transactions."""

ABANDONED_CHECKOUT_FIELDS = "id createdAt updatedAt completedAt customer { id }"
"""What a checkouts/update webhook tells the reducer. An AbandonedCheckout has no `token` (its `id` stands in)
and no top-level email, so a guest's checkout (no customer) names nobody."""

ROOTS = {"customers": CUSTOMER_FIELDS, "orders": ORDER_FIELDS, "abandonedCheckouts": ABANDONED_CHECKOUT_FIELDS}
"""The bulk queries the backfill runs: root connection -> the node fields it reads. Each has one connection
(its root), so every result line is a root object and none carries `__parentId`."""

# `groupObjects` is explicit because its default changed: true at 2025-10, false from 2026-01. Grouping is
# costly and makes timeouts likelier, and the queries select no nested connection, so there is nothing to group.
RUN_BULK_QUERY = """
mutation RunBulkQuery($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
""".strip()

_OPERATION_FIELDS = "id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl"
CURRENT_BULK_OPERATION = f"query CurrentBulkOperation {{ currentBulkOperation {{ {_OPERATION_FIELDS} }} }}"
BULK_OPERATION_BY_ID = (
    f"query BulkOperation($id: ID!) {{ node(id: $id) {{ ... on BulkOperation {{ {_OPERATION_FIELDS} }} }} }}"
)


def bulk_query(root: str, since: str | None = None) -> str:
    """The bulk query document for `root` (a key of ROOTS), optionally only updated since `since`."""
    if root not in ROOTS:
        raise ValueError(f"no bulk query for {root!r}")
    argument = f"(query: \"updated_at:>='{since}'\")" if since else ""
    return f"{{ {root}{argument} {{ edges {{ node {{ {ROOTS[root]} }} }} }} }}"


def admin_base_url(shop: str) -> str:
    """The shop's own Admin API origin."""
    return f"https://{shop}"


class ShopifyAdmin:
    """Admin GraphQL for one shop. Create once per shop and token; it pools connections."""

    def __init__(
        self,
        shop: str,
        access_token: str,
        *,
        base_url: str | None = None,
        http: httpx.Client | None = None,
        api_version: str = SHOPIFY_API_VERSION,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 6,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 30.0,
    ) -> None:
        self.shop = shop
        self._endpoint = f"{(base_url or admin_base_url(shop)).rstrip('/')}/admin/api/{api_version}/graphql.json"
        self._headers = {"X-Shopify-Access-Token": access_token, "Content-Type": "application/json"}
        if base_url:  # another origin (the local sandbox) still learns which shop is asked, as Shopify does
            self._headers["Host"] = shop
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=DEFAULT_TIMEOUT)
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self.throttled_count = 0
        self.deprecations: Counter[str] = Counter()
        """Shopify's `X-Shopify-API-Deprecated-Reason` answers, by reason: each is logged once and counted."""

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> ShopifyAdmin:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- GraphQL -----------------------------------------------------------------------------------

    def _backoff(self, attempt: int, throttle: dict[str, Any] | None = None) -> float:
        """Seconds to wait: enough cost points to come back when Shopify says how many, else exponential."""
        if throttle:
            try:
                missing = float(throttle["requested"]) - float(throttle["available"])
                return min(self._backoff_cap_s, max(missing, 0.0) / max(float(throttle["restore_rate"]), 1.0) + 0.1)
            except (KeyError, TypeError, ValueError):
                pass
        return float(min(self._backoff_cap_s, self._backoff_base_s * (2 ** (attempt - 1))))

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a GraphQL answer, after waiting out throttling; raises `AdminError` otherwise."""
        body = {"query": query, "variables": variables or {}}
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._http.post(self._endpoint, json=body, headers=self._headers)
            except httpx.TransportError as error:
                if attempt == self._max_attempts:
                    raise AdminError(f"Shopify Admin API unreachable: {type(error).__name__}") from None
                self._sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status == 401:
                raise TokenRevoked(
                    f"Shopify refused the Admin API access token for {self.shop} (401): it is wrong or was revoked"
                )
            if status == 403:
                raise AccessDenied(
                    f"Shopify denied access for {self.shop} (403): the token needs scopes {', '.join(REQUIRED_SCOPES)}"
                )
            if status == 429 or status >= 500:
                self.throttled_count += status == 429
                if attempt == self._max_attempts:
                    kind = Throttled if status == 429 else AdminError
                    raise kind(f"Shopify Admin API answered {status} {self._max_attempts} times; try again later")
                retry_after = response.headers.get("retry-after")
                wait = float(retry_after) if retry_after and retry_after.isdigit() else self._backoff(attempt)
                self._sleep(min(wait, self._backoff_cap_s))
                continue
            if status == 404:
                raise ShopNotFound(f"Shopify has no shop {self.shop} (404): check the shop's myshopify.com domain")
            if status != 200:
                raise AdminError(f"Shopify Admin API answered {status}")
            self._note_deprecation(response.headers.get(DEPRECATED_REASON_HEADER))
            try:
                answer = response.json()
            except ValueError:
                raise AdminError("Shopify Admin API answered with a body that is not JSON") from None
            errors = answer.get("errors") if isinstance(answer, dict) else None
            if errors:
                codes = _error_codes(errors)
                if "THROTTLED" in codes:
                    self.throttled_count += 1
                    if attempt == self._max_attempts:
                        raise Throttled(f"Shopify kept throttling the Admin API for {self.shop}; try again later")
                    self._sleep(self._backoff(attempt, _throttle_status(answer)))
                    continue
                if "ACCESS_DENIED" in codes:
                    raise AccessDenied(
                        f"Shopify denied access for {self.shop}: the token needs scopes {', '.join(REQUIRED_SCOPES)}"
                    )
                raise GraphQLError(f"Shopify rejected the query: {_messages(errors)}")
            data = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(data, dict):
                raise AdminError("Shopify Admin API answered without data")
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    def _note_deprecation(self, reason: str | None) -> None:
        if not reason:
            return
        if reason not in self.deprecations:
            logger.warning("Shopify flagged a deprecated Admin API use", extra={"reason": reason[:300]})
        self.deprecations[reason] += 1

    # --- bulk operations ---------------------------------------------------------------------------

    def run_bulk_query(self, root: str, since: str | None = None) -> BulkOperation:
        """Start the bulk query for `root`; raises AdminError on userErrors (e.g. one already running)."""
        try:
            data = self.graphql(RUN_BULK_QUERY, {"query": bulk_query(root, since)})
        except AccessDenied as denied:
            if root != "abandonedCheckouts":
                raise
            raise AccessDenied(
                f"{denied} (abandoned checkouts also need a user with the manage_abandoned_checkouts permission)"
            ) from None
        payload = data.get("bulkOperationRunQuery") or {}
        user_errors = payload.get("userErrors") or []
        if user_errors:
            raise AdminError(f"Shopify did not start the bulk {root} query: {_messages(user_errors)}")
        operation = payload.get("bulkOperation")
        if not isinstance(operation, dict):
            raise AdminError(f"Shopify did not start the bulk {root} query")
        return BulkOperation.from_json(operation)

    def access_scopes(self) -> set[str]:
        """The scopes the shop granted this app's token (`read_all_orders` decides how far back orders go)."""
        installation = self.graphql(ACCESS_SCOPES).get("currentAppInstallation") or {}
        return {
            str(scope["handle"])
            for scope in installation.get("accessScopes") or []
            if isinstance(scope, dict) and scope.get("handle")
        }

    def current_bulk_operation(self) -> BulkOperation | None:
        found = self.graphql(CURRENT_BULK_OPERATION).get("currentBulkOperation")
        return BulkOperation.from_json(found) if isinstance(found, dict) else None

    def bulk_operation(self, operation_id: str) -> BulkOperation | None:
        found = self.graphql(BULK_OPERATION_BY_ID, {"id": operation_id}).get("node")
        return BulkOperation.from_json(found) if isinstance(found, dict) and found.get("id") else None

    def wait(
        self,
        operation_id: str,
        *,
        poll_every_s: float = 2.0,
        max_poll_s: float = 30.0,
        on_poll: Callable[[BulkOperation], None] | None = None,
        finished: Callable[[], bool] | None = None,
        should_stop: Callable[[], bool] | None = None,
        check_every_s: float = 1.0,
    ) -> BulkOperation:
        """Poll until the operation ends; between polls, every `check_every_s`, `finished()` may say a
        bulk_operations/finish webhook came, and the next poll happens at once.

        `finished()` only brings a poll forward: Shopify's answer decides. After one early poll that still
        finds the operation running, the notice is not consulted again (a stray one cannot make us spin).
        Returns the COMPLETED operation, or the still-running one when `should_stop()` says to give up
        for now; raises BulkOperationFailed for FAILED, CANCELED or EXPIRED.
        """
        delay = poll_every_s
        listening = finished is not None
        while True:
            operation = self.bulk_operation(operation_id)
            if operation is None:
                raise BulkOperationFailed(f"Shopify does not know bulk operation {operation_id}")
            if on_poll is not None:
                on_poll(operation)
            if operation.finished:
                if operation.status != "COMPLETED":
                    reason = f" ({operation.error_code})" if operation.error_code else ""
                    raise BulkOperationFailed(
                        f"bulk operation {operation_id} ended {operation.status}{reason}; run the backfill again"
                    )
                return operation
            if should_stop is not None and should_stop():
                return operation
            waited = 0.0
            while waited < delay:
                if listening and finished is not None and finished():
                    listening = False
                    break
                step = min(check_every_s, delay - waited) if listening else delay - waited
                self._sleep(step)
                waited += step
            delay = min(max_poll_s, delay * 1.5)

    def stream_lines(self, url: str, skip: int = 0) -> Iterator[tuple[int, bytes]]:
        """(line number from 1, raw line) of the result file, streamed; the first `skip` lines are not yielded.

        Raises ResultUrlExpired when the URL no longer answers.
        """
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code in {400, 401, 403, 404, 410}:
                    raise ResultUrlExpired(
                        f"the bulk result URL answered {response.status_code} (expired); run the backfill again"
                    )
                if response.status_code != 200:
                    raise AdminError(f"downloading the bulk result answered {response.status_code}")
                number = 0
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    number += 1
                    if number > skip:
                        yield number, line.encode("utf-8")
        except httpx.TransportError as error:
            raise AdminError(f"downloading the bulk result failed: {type(error).__name__}") from None


def _error_codes(errors: Any) -> set[str]:
    codes: set[str] = set()
    for error in errors if isinstance(errors, list) else []:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = extensions.get("code") if isinstance(extensions, dict) else None
        if isinstance(code, str):
            codes.add(code)
    return codes


def _messages(errors: Any) -> str:
    if isinstance(errors, str):
        return errors[:200]
    found = [str(error.get("message"))[:200] for error in errors if isinstance(error, dict) and error.get("message")]
    return "; ".join(found[:3]) or "no message"


def _throttle_status(answer: dict[str, Any]) -> dict[str, Any] | None:
    extensions = answer.get("extensions")
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    if not isinstance(cost, dict):
        return None
    status = cost.get("throttleStatus") or {}
    return {
        "requested": cost.get("requestedQueryCost"),
        "available": status.get("currentlyAvailable"),
        "restore_rate": status.get("restoreRate"),
    }


# --- webhook subscriptions and access scopes ------------------------------------------------------------

_SUBSCRIPTION_FIELDS = "id topic uri format apiVersion { handle }"
WEBHOOK_SUBSCRIPTIONS = (
    "query WebhookSubscriptions($after: String) { webhookSubscriptions(first: 100, after: $after) { "
    f"edges {{ node {{ {_SUBSCRIPTION_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"
)
WEBHOOK_SUBSCRIPTION_CREATE = (
    "mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, "
    "$webhookSubscription: WebhookSubscriptionInput!) { "
    "webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) { "
    f"webhookSubscription {{ {_SUBSCRIPTION_FIELDS} }} userErrors {{ field message }} }} }}"
)
WEBHOOK_SUBSCRIPTION_UPDATE = (
    "mutation WebhookSubscriptionUpdate($id: ID!, $webhookSubscription: WebhookSubscriptionInput!) { "
    "webhookSubscriptionUpdate(id: $id, webhookSubscription: $webhookSubscription) { "
    f"webhookSubscription {{ {_SUBSCRIPTION_FIELDS} }} userErrors {{ field message }} }} }}"
)
WEBHOOK_SUBSCRIPTION_DELETE = (
    "mutation WebhookSubscriptionDelete($id: ID!) { webhookSubscriptionDelete(id: $id) { "
    "deletedWebhookSubscriptionId userErrors { field message } } }"
)
ACCESS_SCOPES = "query AccessScopes { currentAppInstallation { accessScopes { handle } } }"


def topic_enum(topic: str) -> str:
    """Shopify's WebhookSubscriptionTopic value for a topic name: `orders/create` -> `ORDERS_CREATE`,
    `customer.tags_added` -> `CUSTOMER_TAGS_ADDED`."""
    return topic.strip().upper().replace("/", "_").replace(".", "_")


def scope_for_topic(topic: str) -> str:
    """The access scope Shopify requires to subscribe to `topic` (customer topics: read_customers)."""
    return "read_customers" if topic.startswith("customer") else "read_orders"


@dataclass(frozen=True)
class WebhookSubscription:
    """One of the app's webhook subscriptions on a shop."""

    id: str
    topic: str
    """The WebhookSubscriptionTopic value, e.g. ORDERS_CREATE."""
    uri: str
    format: str = "JSON"
    api_version: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookSubscription:
        version = data.get("apiVersion")
        return cls(
            id=str(data["id"]),
            topic=str(data.get("topic") or ""),
            uri=str(data.get("uri") or ""),
            format=str(data.get("format") or "JSON"),
            api_version=str(version.get("handle")) if isinstance(version, dict) and version.get("handle") else None,
        )


def _subscription_of(data: dict[str, Any], mutation: str, what: str) -> WebhookSubscription:
    payload = data.get(mutation) or {}
    user_errors = payload.get("userErrors") or []
    if user_errors:
        raise AdminError(f"Shopify did not {what}: {_messages(user_errors)}")
    found = payload.get("webhookSubscription")
    if not isinstance(found, dict):
        raise AdminError(f"Shopify did not {what}")
    return WebhookSubscription.from_json(found)


class WebhookAdmin(ShopifyAdmin):
    """The Admin calls that manage the app's webhook subscriptions and read its granted scopes."""

    def __enter__(self) -> WebhookAdmin:
        return self

    def webhook_subscriptions(self) -> list[WebhookSubscription]:
        """Every subscription of this app on the shop, all pages."""
        found: list[WebhookSubscription] = []
        after: str | None = None
        while True:
            connection = self.graphql(WEBHOOK_SUBSCRIPTIONS, {"after": after}).get("webhookSubscriptions") or {}
            found += [
                WebhookSubscription.from_json(edge["node"])
                for edge in connection.get("edges") or []
                if isinstance(edge, dict) and isinstance(edge.get("node"), dict)
            ]
            page = connection.get("pageInfo") or {}
            if not page.get("hasNextPage") or not page.get("endCursor"):
                return found
            after = str(page["endCursor"])

    def create_webhook_subscription(self, topic: str, uri: str) -> WebhookSubscription:
        variables = {"topic": topic, "webhookSubscription": {"uri": uri, "format": "JSON"}}
        data = self.graphql(WEBHOOK_SUBSCRIPTION_CREATE, variables)
        return _subscription_of(data, "webhookSubscriptionCreate", f"subscribe to {topic}")

    def update_webhook_subscription(self, subscription_id: str, uri: str) -> WebhookSubscription:
        variables = {"id": subscription_id, "webhookSubscription": {"uri": uri, "format": "JSON"}}
        data = self.graphql(WEBHOOK_SUBSCRIPTION_UPDATE, variables)
        return _subscription_of(data, "webhookSubscriptionUpdate", f"update subscription {subscription_id}")

    def delete_webhook_subscription(self, subscription_id: str) -> None:
        payload = self.graphql(WEBHOOK_SUBSCRIPTION_DELETE, {"id": subscription_id}).get("webhookSubscriptionDelete")
        user_errors = (payload or {}).get("userErrors") or []
        if user_errors or not (payload or {}).get("deletedWebhookSubscriptionId"):
            raise AdminError(f"Shopify did not delete subscription {subscription_id}: {_messages(user_errors)}")
