"""Every Admin GraphQL document Evergreen sends validates against Shopify's own introspection schema at the
pinned API version, and every bulk query obeys the rules of Shopify's bulk operations guide.

The schema is `dist/data/admin_<version>.json.gz` of the pinned npm package `@shopify/dev-mcp` (`make contracts`).
"""

from __future__ import annotations

import warnings

import pytest
from graphql import GraphQLSchema

from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify import admin
from evergreen_cli.sandboxes import shopify_contracts
from evergreen_cli.sandboxes.shopify_graphql import (
    LIST_CONNECTION,
    admin_schema,
    bulk_rule_errors,
    deprecated_fields,
    document_errors,
)

pytestmark = pytest.mark.contract

SINCE = "2025-01-01T00:00:00Z"
DOCUMENTS = {
    name: value
    for name, value in vars(admin).items()
    if name.isupper() and isinstance(value, str) and value.lstrip().startswith(("query", "mutation"))
}
"""Every operation the Admin client (`evergreen.shopify.admin`) defines."""
BULK_QUERIES = {
    f"{root}{' since' if since else ''}": admin.bulk_query(root, since)
    for root in admin.ROOTS
    for since in (None, SINCE)
}
"""Every bulk query the backfill runs (each root, with and without an `updated_at` bound)."""


def versions_from_pin() -> list[str]:
    """The pinned version and every later one whose schema the package ships (the pin alone when absent)."""
    if shopify_contracts.missing_reason() is not None:
        return [SHOPIFY_API_VERSION]
    later = [v for v in shopify_contracts.admin_schema_versions() if v >= SHOPIFY_API_VERSION]
    return later or [SHOPIFY_API_VERSION]


@pytest.fixture(scope="module", params=versions_from_pin())
def schema(request: pytest.FixtureRequest) -> GraphQLSchema:
    reason = shopify_contracts.missing_reason()
    if reason is not None:
        pytest.skip(reason)
    found = admin_schema(request.param)
    if found is None:
        pytest.skip(f"the pinned @shopify/dev-mcp ships no Admin schema for {request.param}")
    return found


def test_the_client_defines_the_documents_this_test_checks() -> None:
    assert {"RUN_BULK_QUERY", "BULK_OPERATION_BY_ID", "WEBHOOK_SUBSCRIPTION_CREATE", "ACCESS_SCOPES"} <= set(DOCUMENTS)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_document_evergreen_sends_validates_against_shopifys_schema(schema: GraphQLSchema, name: str) -> None:
    assert document_errors(schema, DOCUMENTS[name]) == []


@pytest.mark.parametrize("name", sorted(BULK_QUERIES))
def test_every_bulk_query_validates_on_its_own_and_obeys_the_bulk_rules(schema: GraphQLSchema, name: str) -> None:
    assert bulk_rule_errors(schema, BULK_QUERIES[name]) == []


@pytest.mark.parametrize("name", sorted(BULK_QUERIES))
def test_every_bulk_query_has_one_connection_so_the_result_has_only_root_lines(name: str) -> None:
    """No nested connection, so no line carries `__parentId`: the file reads the same grouped or ungrouped
    (`groupObjects` defaults to true at 2025-10 and to false from 2026-01; the client sets false)."""
    assert BULK_QUERIES[name].count("edges") == 1
    assert "groupObjects: false" in admin.RUN_BULK_QUERY


CUSTOMER_CONTACT = [
    "Customer.email",
    "Customer.phone",
    "Customer.emailMarketingConsent",
    "Customer.smsMarketingConsent",
]
KNOWN_DEPRECATED = {
    "CURRENT_BULK_OPERATION": ["QueryRoot.currentBulkOperation"],
    "customers": CUSTOMER_CONTACT,
    "customers since": CUSTOMER_CONTACT,
}
"""Deprecated fields still selected (at 2025-10 through 2026-10), and why they stay for now:
- `currentBulkOperation`: its replacement `bulkOperations` does not exist at 2025-10, and the backfill polls its
  operation by id (`BULK_OPERATION_BY_ID`); only `ShopifyAdmin.current_bulk_operation` reads it;
- the customer's `email`, `phone` and consents (replaced by `defaultEmailAddress` / `defaultPhoneNumber`): still
  served at every published version; moving changes the bulk customer shape, the sandbox store and seed data."""


def test_deprecated_fields_are_reported_and_only_the_known_ones_are_selected(schema: GraphQLSchema) -> None:
    found = {
        name: deprecated_fields(schema, document)
        for name, document in {**DOCUMENTS, **BULK_QUERIES}.items()
        if deprecated_fields(schema, document)
    }
    for name, fields in found.items():
        warnings.warn(f"{name} selects deprecated {', '.join(fields)}", stacklevel=1)

    assert {name: [field.split(" (")[0] for field in fields] for name, fields in found.items()} == KNOWN_DEPRECATED


# --- the rules themselves ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        (
            "{ orders { edges { node { id refunds { id transactions { edges { node { id } } } } } } } }",
            LIST_CONNECTION,
        ),
        ("{ shop { name } }", "A bulk query must contain at least one connection."),
        ('{ node(id: "gid://shopify/Order/1") { id } }', "The top-level node and nodes fields cannot be used"),
        ("{ shop { name } orders { edges { node { id } } } }", "A bulk query selects a single top-level field."),
        (
            "{ customers { edges { node { id orders { edges { node { id "
            "lineItems { edges { node { id } } } } } } } } } }",
            "Bulk queries nest connections at most 2 levels deep.",
        ),
        ("{ orders { edges { node { id nonsense } } } }", "Cannot query field 'nonsense' on type 'Order'."),
    ],
    ids=["connection-in-list", "no-connection", "node", "two-roots", "three-levels", "unknown-field"],
)
def test_the_bulk_rules_refuse_what_shopify_refuses(schema: GraphQLSchema, query: str, problem: str) -> None:
    assert any(found.startswith(problem) for found in bulk_rule_errors(schema, query))


def test_more_than_five_connections_are_refused(schema: GraphQLSchema) -> None:
    nested = " ".join(f"c{n}: metafields {{ edges {{ node {{ id }} }} }}" for n in range(5))
    query = f"{{ products {{ edges {{ node {{ id {nested} }} }} }} }}"

    assert any("at most 5 connections" in found for found in bulk_rule_errors(schema, query))
