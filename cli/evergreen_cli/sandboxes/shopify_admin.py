"""A local stand-in for the Shopify Admin GraphQL API (127.0.0.1:3200 in the local stack).

It answers the operations the backfill sends (`bulkOperationRunQuery` for customers, orders or
abandoned checkouts (optionally filtered by `updated_at:>=`),
`currentBulkOperation`, `node(id:)` on a BulkOperation) at the pinned API version, serves the bulk
result JSONL from a local URL, manages the app's webhook subscriptions (`webhookSubscriptions`, paged,
`webhookSubscriptionCreate`, `webhookSubscriptionUpdate`, `webhookSubscriptionDelete`), tells the
token's scopes (`currentAppInstallation { accessScopes }`), and answers any other document with a
GraphQL error rather than a guess. Once a store is loaded it answers only for that shop, as Shopify routes by
the Host header: a request for another `*.myshopify.com` gets 404 (the Admin client sends the shop as Host).

It refuses what Shopify refuses: with Shopify's Admin schema for the pinned version in the cache
(`make contracts`; see `shopify_graphql`), every document is validated against it (a GraphQL error, as
Shopify answers), and a bulk query is validated on its own and against the bulk operations rules (`userErrors`
on `bulkOperationRunQuery`, code INVALID). `groupObjects` is read (default: true at 2025-10, false from
2026-01) and kept on the operation; Evergreen's bulk queries select no nested connection, so every result line
is a root object and the grouped and ungrouped files are the same. Without the `read_all_orders` scope only
orders created in the last 60 days are served, as Shopify does, with no error.

Control endpoints (not Shopify's):
- POST /_sandbox/shop {"shop": ..., "customers": [...], "orders": [...], "abandonedCheckouts": [...]}: load a
  store (Admin GraphQL shape, see docs/local-stack.md; `abandonedCheckouts` is optional), replacing what was
  there;
- GET /_sandbox/shop: the loaded store;
- GET /_sandbox/requests: the recorded requests (access token redacted), oldest first;
- DELETE /_sandbox/requests: forget them;
- POST /_sandbox/app {"scopes": [...], "webhook_api_version": V, "page_size": N}: the granted scopes
  (default read_customers, read_orders, read_all_orders), the API version new subscriptions inherit (default the pinned
  one) and the subscriptions page size (default 100);
- GET /_sandbox/webhooks: the app's subscriptions; POST /_sandbox/webhooks {"subscriptions": [{"topic",
  "uri", "format"?, "api_version"?}]}: replace them (say, with stale ones left by an older stack);
- POST /_sandbox/fail {"kind": K, "count": N}: the next N matching calls misbehave, K one of
  `throttled` (THROTTLED cost error), `http_429`, `revoked` (401), `bulk_failed`, `bulk_canceled`,
  `url_expired` (result download 403), `malformed_line` (the next result file has a broken line 2).

Run standalone: `python -m evergreen_cli.sandboxes.shopify_admin --port 3200`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from evergreen.clock import parse_instant
from evergreen.service.backfill_model import ALL_ORDERS_SCOPE, RECENT_ORDERS_DAYS
from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify.admin import (
    ACCESS_SCOPES,
    BULK_OPERATION_BY_ID,
    CURRENT_BULK_OPERATION,
    ROOTS,
    RUN_BULK_QUERY,
    WEBHOOK_SUBSCRIPTION_CREATE,
    WEBHOOK_SUBSCRIPTION_DELETE,
    WEBHOOK_SUBSCRIPTION_UPDATE,
    WEBHOOK_SUBSCRIPTIONS,
    bulk_query,
)
from evergreen.shopify.eventbridge import PARTNER_SOURCE_ARN
from evergreen_cli.sandboxes.background_server import (
    BackgroundServer,
    SandboxHandler,
    StatefulServer,
    serve_in_background,
)
from evergreen_cli.sandboxes.shopify_graphql import admin_schema, bulk_rule_errors, document_errors

DEFAULT_PORT = 3200
DEFAULT_SHOP = "evergreen-demo.myshopify.com"
GRAPHQL_PATH = f"/admin/api/{SHOPIFY_API_VERSION}/graphql.json"
FAULT_KINDS = frozenset(
    {"throttled", "http_429", "revoked", "bulk_failed", "bulk_canceled", "url_expired", "malformed_line"}
)
DEFAULT_SCOPES = ("read_customers", "read_orders", "read_all_orders")
LOCAL_SANDBOX_TOKEN = "shpat_local_sandbox"  # noqa: S105 - the local sandbox accepts any token


def local_admin_token() -> str:
    """The Admin API token the CLI sends to the local sandbox (any token works there)."""
    return os.environ.get("EVERGREEN_LOCAL_SHOPIFY_ADMIN_TOKEN") or LOCAL_SANDBOX_TOKEN


_TOPIC_ENUM = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SINCE = re.compile(r"updated_at:>='([^']+)'")
_SPACE = re.compile(r"\s+")


def _normal(document: str) -> str:
    return _SPACE.sub(" ", document).strip()


_KNOWN_BULK = {_normal(bulk_query(root)): root for root in ROOTS}


def _bulk_root(document: str) -> tuple[str, str | None] | None:
    """(root, since) for a bulk query the sandbox understands, else None."""
    normal = _normal(document)
    found = _SINCE.search(normal)
    since = found.group(1) if found else None
    plain = normal.replace(f"(query: \"updated_at:>='{since}'\")", "") if since else normal
    root = _KNOWN_BULK.get(_normal(plain))
    return (root, since) if root else None


def _gid(kind: str, value: Any) -> bool:
    return isinstance(value, str) and value.startswith(f"gid://shopify/{kind}/")


STORE_LISTS = (("customers", "Customer"), ("orders", "Order"), ("abandonedCheckouts", "AbandonedCheckout"))
"""The store body's lists (each optional): name -> the gid type of its ids."""


def validate_store(body: Any) -> str | None:
    """Why a store body cannot be loaded, or None when it can."""
    if not isinstance(body, dict):
        return "the body must be a JSON object with lists `customers` and `orders` (and `abandonedCheckouts`)"
    for name, kind in STORE_LISTS:
        items = body.get(name, [])
        if not isinstance(items, list):
            return f"`{name}` must be a list"
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not _gid(kind, item.get("id")):
                return f"{name}[{index}].id must be a gid://shopify/{kind}/... string"
            if kind != "Customer" and parse_instant(item.get("createdAt")) is None:
                return f"{name}[{index}].createdAt must be an ISO 8601 timestamp"
            customer = item.get("customer")
            named = isinstance(customer, dict) and _gid("Customer", customer.get("id"))
            if kind == "AbandonedCheckout" and customer is not None and not named:
                return f"{name}[{index}].customer must be null or an object with a gid://shopify/Customer/... id"
    return None


def _transactions(refund: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = refund.get("transactions")
    if isinstance(raw, dict):
        return [edge["node"] for edge in raw.get("edges", []) if isinstance(edge, dict) and "node" in edge]
    return [dict(item) for item in raw] if isinstance(raw, list) else []


def _total_refunded(refund: Mapping[str, Any]) -> dict[str, Any]:
    """A refund's `totalRefundedSet`: as the store gives it, else the sum of its successful refund transactions."""
    given = refund.get("totalRefundedSet")
    if isinstance(given, dict):
        return given
    total, currency = Decimal(0), "USD"
    for transaction in _transactions(refund):
        if str(transaction.get("kind")).upper() == "REFUND" and str(transaction.get("status")).upper() == "SUCCESS":
            money = (transaction.get("amountSet") or {}).get("shopMoney") or {}
            total += Decimal(str(money.get("amount") or 0))
            currency = str(money.get("currencyCode") or currency)
    return {"shopMoney": {"amount": str(total), "currencyCode": currency}}


def _refund_node(refund: Mapping[str, Any]) -> dict[str, Any]:
    """A refund as the orders bulk query selects it (`id createdAt totalRefundedSet`)."""
    return {"id": refund.get("id"), "createdAt": refund.get("createdAt"), "totalRefundedSet": _total_refunded(refund)}


def jsonl_lines(
    root: str, items: list[dict[str, Any]], since: str | None, orders_from: datetime | None = None
) -> list[bytes]:
    """The bulk result as Shopify writes it: one object per line. Evergreen's bulk queries select no nested
    connection, so every line is a root object and the file is the same grouped or not (`groupObjects`).
    With `orders_from` (a token without `read_all_orders`), older orders are left out, as Shopify does."""
    cutoff = parse_instant(since) if since else None
    lines: list[bytes] = []
    for item in items:
        updated = parse_instant(item.get("updatedAt")) or parse_instant(item.get("createdAt"))
        if cutoff is not None and (updated is None or updated < cutoff):
            continue
        if root != "orders":
            lines.append(json.dumps(item).encode())
            continue
        created = parse_instant(item.get("createdAt"))
        if orders_from is not None and (created is None or created < orders_from):
            continue
        refunds = [_refund_node(refund) for refund in item.get("refunds") or []]
        lines.append(json.dumps({**item, "refunds": refunds}).encode())
    return lines


class ShopState:
    """The loaded store, the bulk operations run against it, recorded requests and pending faults."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.shop = DEFAULT_SHOP
        self.loaded = False
        """Whether a store was loaded (POST /_sandbox/shop): then it answers only for that shop."""
        self.customers: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.abandoned_checkouts: list[dict[str, Any]] = []
        self.operations: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.current: str | None = None
        self.requests: list[dict[str, Any]] = []
        self.faults: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.scopes: list[str] = list(DEFAULT_SCOPES)
        self.webhook_api_version = SHOPIFY_API_VERSION
        self.page_size = 100
        self._subscription_ids = itertools.count(1000)

    def subscribe(self, topic: str, uri: str, format: str = "JSON", api_version: str | None = None) -> dict[str, Any]:
        subscription_id = f"gid://shopify/WebhookSubscription/{next(self._subscription_ids)}"
        self.subscriptions[subscription_id] = {
            "id": subscription_id,
            "topic": topic,
            "uri": uri,
            "format": format,
            "apiVersion": {"handle": api_version or self.webhook_api_version},
        }
        return self.subscriptions[subscription_id]

    def lists(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """The loaded store's lists, named as in its body."""
        lists = (self.customers, self.orders, self.abandoned_checkouts)
        return [(name, items) for (name, _), items in zip(STORE_LISTS, lists, strict=True)]

    def serves(self, host: str) -> bool:
        """Whether a request to `host` reaches this shop: as on Shopify, another shop's domain finds nothing once a
        store is loaded (the sandbox's own address always reaches it)."""
        name = host.rsplit(":", 1)[0].lower()
        return not self.loaded or not name.endswith(".myshopify.com") or name == self.shop

    def take_fault(self, kind: str) -> bool:
        left = self.faults.get(kind, 0)
        if left <= 0:
            return False
        self.faults[kind] = left - 1
        return True

    def load(self, body: dict[str, Any]) -> None:
        self.shop = str(body.get("shop") or DEFAULT_SHOP).lower()
        self.loaded = True
        self.customers = list(body.get("customers", []))
        self.orders = list(body.get("orders", []))
        self.abandoned_checkouts = list(body.get("abandonedCheckouts", []))
        self.operations.clear()
        self.files.clear()
        self.current = None

    def start(self, root: str, since: str | None, base_url: str, group_objects: bool = False) -> dict[str, Any]:
        number = next(self._ids)
        operation_id = f"gid://shopify/BulkOperation/{number}"
        items = {"customers": self.customers, "orders": self.orders}.get(root, self.abandoned_checkouts)
        recent_only = ALL_ORDERS_SCOPE not in self.scopes
        orders_from = datetime.now(UTC) - timedelta(days=RECENT_ORDERS_DAYS) if recent_only else None
        lines = jsonl_lines(root, items, since, orders_from)
        if self.take_fault("malformed_line") and lines:
            lines.insert(1, b'{"id": "gid://shopify/Broken/1", ')
        content = b"\n".join(lines) + (b"\n" if lines else b"")
        token = f"op{number}"
        self.files[token] = content
        ending = "COMPLETED"
        if self.take_fault("bulk_failed"):
            ending = "FAILED"
        elif self.take_fault("bulk_canceled"):
            ending = "CANCELED"
        roots = sum(1 for line in lines if b'"__parentId"' not in line)
        operation = {
            "id": operation_id,
            "status": "CREATED",
            "errorCode": None,
            "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "completedAt": None,
            "objectCount": "0",
            "rootObjectCount": "0",
            "fileSize": None,
            "url": None,
            "partialDataUrl": None,
            "_group_objects": group_objects,
            "_ending": ending,
            "_final": {
                "objectCount": str(len(lines)),
                "rootObjectCount": str(roots),
                "fileSize": str(len(content)),
                "url": f"{base_url}/_sandbox/bulk/{token}.jsonl" if lines else None,
            },
        }
        self.operations[operation_id] = operation
        self.current = operation_id
        return operation

    def advance(self, operation_id: str) -> dict[str, Any] | None:
        """The operation as a poll sees it: CREATED -> RUNNING -> its ending."""
        operation = self.operations.get(operation_id)
        if operation is None:
            return None
        if operation["status"] == "CREATED":
            operation["status"] = "RUNNING"
        elif operation["status"] == "RUNNING":
            operation["status"] = operation["_ending"]
            operation["completedAt"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            if operation["_ending"] == "COMPLETED":
                operation.update(operation["_final"])
            else:
                operation["errorCode"] = "INTERNAL_SERVER_ERROR" if operation["_ending"] == "FAILED" else None
        return {key: value for key, value in operation.items() if not key.startswith("_")}


GROUP_OBJECTS_DEFAULT = SHOPIFY_API_VERSION < "2026-01"
"""`bulkOperationRunQuery(groupObjects:)` defaults to true at 2025-10 and to false from 2026-01."""
_GROUP_OBJECTS = re.compile(r"groupObjects: *(true|false)")


def _group_objects(document: str) -> bool:
    given = _GROUP_OBJECTS.search(document)
    return given.group(1) == "true" if given else GROUP_OBJECTS_DEFAULT


def _graphql_error(message: str, code: str = "SANDBOX_UNSUPPORTED") -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


class _Handler(SandboxHandler):
    server: _Server

    def _reply(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        content_type = "application/jsonl" if isinstance(body, bytes) else "application/json"
        self._send(status, payload, content_type, headers)

    def _base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _handle(self) -> None:
        state = self.server.state
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
            if path == GRAPHQL_PATH or path.startswith("/_sandbox/shop"):
                self._reply(HTTPStatus.BAD_REQUEST, {"errors": "body is not valid JSON"})
                return
        with state.lock:
            if path.startswith("/_sandbox/"):
                self._control(state, path, body)
                return
            state.requests.append(
                {
                    "method": self.command,
                    "path": path,
                    "body": body,
                    "access_token": "<redacted>" if self.headers.get("X-Shopify-Access-Token") else None,
                }
            )
            if path != GRAPHQL_PATH or self.command != "POST" or not state.serves(self.headers.get("Host", "")):
                self._reply(HTTPStatus.NOT_FOUND, {"errors": "Not Found"})
                return
            self._graphql(state, body)

    def _control(self, state: ShopState, path: str, body: Any) -> None:
        if path == "/_sandbox/requests" and self.command == "GET":
            self._reply(HTTPStatus.OK, state.requests)
        elif path == "/_sandbox/requests" and self.command == "DELETE":
            state.requests.clear()
            self._reply(HTTPStatus.NO_CONTENT)
        elif path == "/_sandbox/shop" and self.command == "POST":
            problem = validate_store(body)
            if problem is not None:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": problem})
                return
            state.load(body)
            self._reply(HTTPStatus.OK, {"shop": state.shop, **{name: len(items) for name, items in state.lists()}})
        elif path == "/_sandbox/shop" and self.command == "GET":
            self._reply(HTTPStatus.OK, {"shop": state.shop, **dict(state.lists())})
        elif path == "/_sandbox/app" and self.command == "POST" and isinstance(body, dict):
            state.scopes = [str(scope) for scope in body.get("scopes", state.scopes)]
            state.webhook_api_version = str(body.get("webhook_api_version", state.webhook_api_version))
            state.page_size = max(1, int(body.get("page_size", state.page_size)))
            self._reply(HTTPStatus.OK, {"scopes": state.scopes, "webhook_api_version": state.webhook_api_version})
        elif path == "/_sandbox/webhooks" and self.command == "GET":
            self._reply(HTTPStatus.OK, list(state.subscriptions.values()))
        elif path == "/_sandbox/webhooks" and self.command == "POST" and isinstance(body, dict):
            state.subscriptions.clear()
            for item in body.get("subscriptions", []):
                state.subscribe(
                    str(item["topic"]), str(item["uri"]), item.get("format", "JSON"), item.get("api_version")
                )
            self._reply(HTTPStatus.OK, list(state.subscriptions.values()))
        elif path == "/_sandbox/fail" and self.command == "POST":
            kind = body.get("kind") if isinstance(body, dict) else None
            if kind not in FAULT_KINDS:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": f"kind must be one of {sorted(FAULT_KINDS)}"})
                return
            state.faults[kind] = int(body.get("count", 1))
            self._reply(HTTPStatus.OK, {"kind": kind, "count": state.faults[kind]})
        elif path.startswith("/_sandbox/bulk/") and self.command == "GET":
            token = path.removeprefix("/_sandbox/bulk/").removesuffix(".jsonl")
            content = state.files.get(token)
            if content is None or state.take_fault("url_expired"):
                self._reply(HTTPStatus.FORBIDDEN, {"error": "Request has expired"})
                return
            self._reply(HTTPStatus.OK, content)
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": "unknown sandbox endpoint"})

    def _graphql(self, state: ShopState, body: Any) -> None:
        if state.take_fault("revoked"):
            message = "[API] Invalid API key or access token (unrecognized login or wrong password)"
            self._reply(HTTPStatus.UNAUTHORIZED, {"errors": message})
            return
        if not self.headers.get("X-Shopify-Access-Token"):
            self._reply(HTTPStatus.UNAUTHORIZED, {"errors": "[API] Invalid API key or access token"})
            return
        if state.take_fault("http_429"):
            self._reply(HTTPStatus.TOO_MANY_REQUESTS, {"errors": "Exceeded 2 calls per second"}, {"Retry-After": "0"})
            return
        if state.take_fault("throttled"):
            answer = _graphql_error("Throttled", "THROTTLED")
            answer["extensions"] = {
                "cost": {
                    "requestedQueryCost": 10,
                    "actualQueryCost": None,
                    "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 10, "restoreRate": 100.0},
                }
            }
            self._reply(HTTPStatus.OK, answer)
            return
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            self._reply(HTTPStatus.BAD_REQUEST, {"errors": {"query": "Required parameter missing or invalid"}})
            return
        self._reply(HTTPStatus.OK, self._operation(state, body))

    def _operation(self, state: ShopState, body: dict[str, Any]) -> dict[str, Any]:
        document = _normal(body["query"])
        raw_variables = body.get("variables")
        variables: dict[str, Any] = raw_variables if isinstance(raw_variables, dict) else {}
        schema = admin_schema(SHOPIFY_API_VERSION)
        if schema is not None:
            invalid = document_errors(schema, body["query"])
            if invalid:
                return {"errors": [{"message": message} for message in invalid]}
        if document == _normal(RUN_BULK_QUERY):
            inner = str(variables.get("query", ""))
            refused = bulk_rule_errors(schema, inner) if schema is not None else []
            if refused:
                errors = [{"field": ["query"], "message": message, "code": "INVALID"} for message in refused]
                return {"data": {"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": errors}}}
            understood = _bulk_root(inner)
            if understood is None:
                return _graphql_error("the sandbox does not understand this bulk query (only Evergreen's own)")
            running = state.operations.get(state.current or "")
            if running is not None and running["status"] in {"CREATED", "RUNNING"}:
                error = {
                    "field": None,
                    "message": f"A bulk query operation for this app and shop is already in progress: {running['id']}.",
                    "code": "OPERATION_IN_PROGRESS",
                }
                return {"data": {"bulkOperationRunQuery": {"bulkOperation": None, "userErrors": [error]}}}
            operation = state.start(*understood, base_url=self._base(), group_objects=_group_objects(document))
            created = {"id": operation["id"], "status": operation["status"]}
            return {"data": {"bulkOperationRunQuery": {"bulkOperation": created, "userErrors": []}}}
        if document == _normal(CURRENT_BULK_OPERATION):
            return {"data": {"currentBulkOperation": state.advance(state.current) if state.current else None}}
        if document == _normal(BULK_OPERATION_BY_ID):
            return {"data": {"node": state.advance(str(variables.get("id", "")))}}
        if document in _WEBHOOK_OPERATIONS:
            return _WEBHOOK_OPERATIONS[document](state, variables)
        return _graphql_error("the sandbox does not understand this query (it answers only Evergreen's operations)")


def _user_errors(mutation: str, message: str, field: list[str] | None = None) -> dict[str, Any]:
    return {"data": {mutation: {"webhookSubscription": None, "userErrors": [{"field": field, "message": message}]}}}


def _subscription_input(variables: dict[str, Any]) -> tuple[str, str] | str:
    """(uri, format) of a WebhookSubscriptionInput, or why it is invalid."""
    given = variables.get("webhookSubscription")
    if not isinstance(given, dict) or not isinstance(given.get("uri"), str):
        return "Variable $webhookSubscription of type WebhookSubscriptionInput! was provided invalid value"
    uri = given["uri"]
    local = uri.startswith(("http://127.0.0.1", "http://localhost"))
    if uri.startswith("arn:"):
        # Since 2025-04 `uri` also takes an Amazon EventBridge partner event source ARN.
        return (uri, str(given.get("format") or "JSON")) if PARTNER_SOURCE_ARN.fullmatch(uri) else "Address is invalid"
    if not (uri.startswith("https://") or local):
        return "Address protocol http:// is not supported"
    return uri, str(given.get("format") or "JSON")


def _list_subscriptions(state: ShopState, variables: dict[str, Any]) -> dict[str, Any]:
    items = list(state.subscriptions.values())
    start = int(variables["after"]) if str(variables.get("after") or "").isdigit() else 0
    page = items[start : start + state.page_size]
    end = start + len(page)
    return {
        "data": {
            "webhookSubscriptions": {
                "edges": [{"node": item} for item in page],
                "pageInfo": {"hasNextPage": end < len(items), "endCursor": str(end) if page else None},
            }
        }
    }


def _missing_scope(state: ShopState, topic: str) -> str | None:
    needed = "read_customers" if topic.startswith("CUSTOMER") else "read_orders"
    return None if needed in state.scopes else needed


def _create_subscription(state: ShopState, variables: dict[str, Any]) -> dict[str, Any]:
    mutation = "webhookSubscriptionCreate"
    topic = variables.get("topic")
    if not isinstance(topic, str) or not _TOPIC_ENUM.match(topic):
        return _graphql_error(f"Variable $topic of type WebhookSubscriptionTopic! was provided invalid value {topic!r}")
    given = _subscription_input(variables)
    if isinstance(given, str):
        return _user_errors(mutation, given, ["webhookSubscription", "uri"])
    uri, format = given
    missing = _missing_scope(state, topic)
    if missing:
        return _user_errors(mutation, f"Access denied for topic {topic}: the app needs the {missing} scope", ["topic"])
    if any(item["topic"] == topic and item["uri"] == uri for item in state.subscriptions.values()):
        return _user_errors(mutation, "Address for this topic has already been taken", ["webhookSubscription", "uri"])
    created = state.subscribe(topic, uri, format)
    return {"data": {mutation: {"webhookSubscription": created, "userErrors": []}}}


def _update_subscription(state: ShopState, variables: dict[str, Any]) -> dict[str, Any]:
    mutation = "webhookSubscriptionUpdate"
    found = state.subscriptions.get(str(variables.get("id")))
    if found is None:
        return _user_errors(mutation, "Webhook subscription does not exist", ["id"])
    given = _subscription_input(variables)
    if isinstance(given, str):
        return _user_errors(mutation, given, ["webhookSubscription", "uri"])
    found["uri"], found["format"] = given
    return {"data": {mutation: {"webhookSubscription": found, "userErrors": []}}}


def _delete_subscription(state: ShopState, variables: dict[str, Any]) -> dict[str, Any]:
    mutation = "webhookSubscriptionDelete"
    deleted = state.subscriptions.pop(str(variables.get("id")), None)
    if deleted is None:
        error = {"field": ["id"], "message": "Webhook subscription does not exist"}
        return {"data": {mutation: {"deletedWebhookSubscriptionId": None, "userErrors": [error]}}}
    return {"data": {mutation: {"deletedWebhookSubscriptionId": deleted["id"], "userErrors": []}}}


def _access_scopes(state: ShopState, variables: dict[str, Any]) -> dict[str, Any]:
    scopes = [{"handle": scope} for scope in state.scopes]
    return {"data": {"currentAppInstallation": {"accessScopes": scopes}}}


_WEBHOOK_OPERATIONS: dict[str, Callable[[ShopState, dict[str, Any]], dict[str, Any]]] = {
    _normal(WEBHOOK_SUBSCRIPTIONS): _list_subscriptions,
    _normal(WEBHOOK_SUBSCRIPTION_CREATE): _create_subscription,
    _normal(WEBHOOK_SUBSCRIPTION_UPDATE): _update_subscription,
    _normal(WEBHOOK_SUBSCRIPTION_DELETE): _delete_subscription,
    _normal(ACCESS_SCOPES): _access_scopes,
}


_Server = StatefulServer[ShopState]


class ShopifySandbox(BackgroundServer[ShopState]):
    """A running sandbox (see `start_shopify_sandbox`)."""

    def load(self, store: dict[str, Any]) -> None:
        problem = validate_store(store)
        if problem is not None:
            raise ValueError(problem)
        with self.state.lock:
            self.state.load(store)

    def set_app(
        self, *, scopes: list[str] | None = None, webhook_api_version: str | None = None, page_size: int | None = None
    ) -> None:
        """The granted scopes, the API version new subscriptions inherit, the subscriptions page size."""
        with self.state.lock:
            if scopes is not None:
                self.state.scopes = list(scopes)
            if webhook_api_version is not None:
                self.state.webhook_api_version = webhook_api_version
            if page_size is not None:
                self.state.page_size = page_size

    def set_subscriptions(self, subscriptions: list[dict[str, str]]) -> None:
        """Replace the app's subscriptions ({"topic", "uri", "format"?, "api_version"?} each)."""
        with self.state.lock:
            self.state.subscriptions.clear()
            for item in subscriptions:
                self.state.subscribe(item["topic"], item["uri"], item.get("format", "JSON"), item.get("api_version"))

    @property
    def subscriptions(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(item) for item in self.state.subscriptions.values()]

    def fail_next(self, kind: str, count: int = 1) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(kind)
        with self.state.lock:
            self.state.faults[kind] = count

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.requests)


def start_shopify_sandbox(host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> ShopifySandbox:
    """Start the sandbox on a daemon thread (port 0: any free port)."""
    server = _Server((host, port), _Handler, ShopState())
    return ShopifySandbox(server, serve_in_background(server, "shopify-sandbox"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    sandbox = start_shopify_sandbox(args.host, args.port)
    print(f"Shopify Admin sandbox on {sandbox.url}{GRAPHQL_PATH}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
