"""Check an Admin GraphQL document against Shopify's own schema and bulk rules (development and tests only).

Used by the Shopify Admin sandbox (it refuses what Shopify refuses) and by
tests/contract/test_shopify_admin_graphql.py. Needs graphql-core (a dev dependency) and Shopify's
introspection schema from the pinned `@shopify/dev-mcp` package (`shopify_contracts`). Shopify's schema
breaks one of graphql-core's schema-consistency rules (an interface field that is not deprecated, implemented
by a deprecated field), so it is built with `assume_valid=True` and only documents are validated.

The bulk rules are those of Shopify's bulk operations guide and `bulkOperationRunQuery`'s reference:
- the query is one `query` operation that selects a single top-level field, which is not `node` or `nodes`;
- it contains at least one connection and at most five;
- connections nest at most two levels deep;
- no connection sits inside a list field ("Queries that contain a connection field within a list field are
  not currently supported").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntrospectionQuery,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    build_client_schema,
    get_named_type,
    is_interface_type,
    is_object_type,
    parse,
    validate,
)
from graphql.language import Visitor, visit
from graphql.utilities import TypeInfo, TypeInfoVisitor

from evergreen_cli.sandboxes import shopify_contracts

MAX_CONNECTIONS = 5
MAX_CONNECTION_DEPTH = 2
LIST_CONNECTION = "Queries that contain a connection field within a list field are not currently supported."


@lru_cache(maxsize=4)
def admin_schema(version: str) -> GraphQLSchema | None:
    """Shopify's Admin schema at `version`, or None when the pinned package is not in the cache."""
    if not shopify_contracts.admin_schema_path(version).is_file():
        return None
    introspection = cast("IntrospectionQuery", shopify_contracts.admin_introspection(version))
    return build_client_schema(introspection, assume_valid=True)


def _parsed(document: str) -> DocumentNode | str:
    try:
        return parse(document)
    except GraphQLError as error:
        return error.message


def document_errors(schema: GraphQLSchema, document: str) -> list[str]:
    """Why Shopify would refuse `document` (syntax or validation against the schema); empty when it would not."""
    parsed = _parsed(document)
    if isinstance(parsed, str):
        return [parsed]
    return [error.message for error in validate(schema, parsed)]


def deprecated_fields(schema: GraphQLSchema, document: str) -> list[str]:
    """`Type.field (reason)` for every deprecated field or enum value `document` selects."""
    parsed = _parsed(document)
    if isinstance(parsed, str):
        return []
    found: list[str] = []
    info = TypeInfo(schema)

    class _Deprecations(Visitor):
        def enter_field(self, node: FieldNode, *_: object) -> None:
            definition, parent = info.get_field_def(), info.get_parent_type()
            if definition is not None and parent is not None and definition.deprecation_reason:
                found.append(f"{parent.name}.{node.name.value} ({definition.deprecation_reason})")

    visit(parsed, TypeInfoVisitor(info, _Deprecations()))
    return found


@dataclass
class _Walk:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    connections: int = 0
    problems: list[str] | None = None

    def note(self, problem: str) -> None:
        if self.problems is None:
            self.problems = []
        if problem not in self.problems:
            self.problems.append(problem)

    def selections(self, selection_set: SelectionSetNode | None, parent: object, depth: int, in_list: bool) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self.field(selection, parent, depth, in_list)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                self.selections(selection.selection_set, target, depth, in_list)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    target = self.schema.get_type(fragment.type_condition.name.value)
                    self.selections(fragment.selection_set, target, depth, in_list)

    def field(self, node: FieldNode, parent: object, depth: int, in_list: bool) -> None:
        if not (is_object_type(parent) or is_interface_type(parent)):
            return
        definition = parent.fields.get(node.name.value)
        if definition is None:
            return
        field_type = definition.type
        if isinstance(field_type, GraphQLNonNull):
            field_type = field_type.of_type
        is_list = isinstance(field_type, GraphQLList)
        named = get_named_type(field_type)
        is_connection = named.name.endswith("Connection") and not is_list
        if is_connection:
            self.connections += 1
            depth += 1
            if in_list:
                self.note(LIST_CONNECTION)
            if depth > MAX_CONNECTION_DEPTH:
                self.note(f"Bulk queries nest connections at most {MAX_CONNECTION_DEPTH} levels deep.")
        self.selections(node.selection_set, named, depth, in_list or is_list)


def bulk_rule_errors(schema: GraphQLSchema, query: str) -> list[str]:
    """Why Shopify's bulk operations would refuse `query` (the inner query of `bulkOperationRunQuery`)."""
    parsed = _parsed(query)
    if isinstance(parsed, str):
        return [parsed]
    invalid = [error.message for error in validate(schema, parsed)]
    if invalid:
        return invalid
    operations = [node for node in parsed.definitions if isinstance(node, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
        return ["A bulk query is exactly one query operation."]
    operation = operations[0]
    roots = operation.selection_set.selections
    if len(roots) != 1 or not isinstance(roots[0], FieldNode):
        return ["A bulk query selects a single top-level field."]
    if roots[0].name.value in {"node", "nodes"}:
        return ["The top-level node and nodes fields cannot be used in a bulk query."]
    fragments = {node.name.value: node for node in parsed.definitions if isinstance(node, FragmentDefinitionNode)}
    walk = _Walk(schema, fragments)
    query_type: GraphQLObjectType | None = schema.query_type
    walk.selections(operation.selection_set, query_type, 0, False)
    problems = list(walk.problems or [])
    if walk.connections == 0:
        problems.append("A bulk query must contain at least one connection.")
    if walk.connections > MAX_CONNECTIONS:
        problems.append(f"A bulk query contains at most {MAX_CONNECTIONS} connections ({walk.connections} here).")
    return problems
