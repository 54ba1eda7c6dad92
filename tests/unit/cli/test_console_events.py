"""`evergreen console-events`: the sweep's and the backfill's console test events, as the Lambda console reads them.

moto has no EventBridge Schemas backend, so the AWS side is botocore's Stubber: it checks every
request against the service model and answers as the API documents.
"""

from __future__ import annotations

import argparse
import json

import boto3
from botocore.stub import ANY, Stubber

from evergreen.backfill_wiring import BackfillRequest
from evergreen_cli.commands import console_events
from evergreen_cli.commands.console_events import (
    BACKFILL_EVENTS_DIR,
    BACKFILL_PROPERTIES,
    CONSOLE_EVENTS,
    REGISTRY,
    load_examples,
    publish,
    schema_document,
    schema_name,
)


def test_every_sweep_event_becomes_a_named_console_example():
    examples = load_examples()

    document = json.loads(schema_document(examples))

    assert {"dry-run", "full", "lapsed-only", "scheduled"} <= set(document["components"]["examples"])
    assert document["components"]["examples"]["dry-run"] == {"value": {"dry_run": True}}
    assert document["openapi"].startswith("3.")


def test_the_schema_is_named_as_the_lambda_console_expects():
    assert schema_name("evergreen-staleness-sweep") == "_evergreen-staleness-sweep-schema"


def test_publishing_creates_the_registry_when_missing_and_then_the_schema():
    client = boto3.client("schemas", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    content = schema_document(load_examples())
    name = schema_name("evergreen-staleness-sweep")
    with Stubber(client) as stub:
        stub.add_client_error("describe_registry", "NotFoundException", http_status_code=404)
        stub.add_response("create_registry", {"RegistryName": REGISTRY}, {"RegistryName": REGISTRY, "Description": ANY})
        stub.add_client_error("describe_schema", "NotFoundException", http_status_code=404)
        stub.add_response(
            "create_schema",
            {"SchemaName": name},
            {"RegistryName": REGISTRY, "SchemaName": name, "Type": "OpenApi3", "Content": content},
        )
        assert publish(client, "evergreen-staleness-sweep", content) == "created"
        stub.assert_no_pending_responses()


def test_publishing_again_updates_the_existing_schema():
    client = boto3.client("schemas", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    content = schema_document(load_examples())
    name = schema_name("fn")
    with Stubber(client) as stub:
        stub.add_response("describe_registry", {"RegistryName": REGISTRY}, {"RegistryName": REGISTRY})
        stub.add_response("describe_schema", {"SchemaName": name}, {"RegistryName": REGISTRY, "SchemaName": name})
        stub.add_response(
            "update_schema",
            {"SchemaName": name},
            {"RegistryName": REGISTRY, "SchemaName": name, "Type": "OpenApi3", "Content": content},
        )
        assert publish(client, "fn", content) == "updated"
        stub.assert_no_pending_responses()


def test_the_backfill_shop_event_becomes_a_console_example_of_its_own_function():
    backfill = next(events for events in CONSOLE_EVENTS if events.label == "backfill")
    examples = load_examples(backfill.directory)

    document = json.loads(schema_document(examples, backfill.properties))

    assert backfill.function_output == "BackfillFunctionName"
    assert document["components"]["examples"]["shop"]["value"]["shop"] == "your-store.myshopify.com"
    assert set(document["components"]["schemas"]["Event"]["properties"]) >= {"shop", "since", "entered_events"}
    assert BackfillRequest.model_validate(examples["shop"]).entered_events is False


def test_publishing_with_aws_publishes_the_sweep_and_the_backfill_events(monkeypatch, capsys):
    client = boto3.client("schemas", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    monkeypatch.setattr("evergreen_cli.commands.console_events.boto3.client", lambda *_, **__: client)
    monkeypatch.setattr(
        console_events,
        "stack_outputs",
        lambda *_: {"StalenessSweepFunctionName": "ev-staleness-sweep", "BackfillFunctionName": "ev-backfill"},
    )
    backfill_content = schema_document(load_examples(BACKFILL_EVENTS_DIR), BACKFILL_PROPERTIES)
    with Stubber(client) as stub:
        for name in ("ev-staleness-sweep", "ev-backfill"):
            schema = schema_name(name)
            stub.add_response("describe_registry", {"RegistryName": REGISTRY}, {"RegistryName": REGISTRY})
            stub.add_client_error("describe_schema", "NotFoundException", http_status_code=404)
            content = backfill_content if name == "ev-backfill" else ANY
            stub.add_response(
                "create_schema",
                {"SchemaName": schema},
                {"RegistryName": REGISTRY, "SchemaName": schema, "Type": "OpenApi3", "Content": content},
            )
        args = argparse.Namespace(
            aws=True, stack="ev", region="us-east-1", function_name=None, backfill_function_name=None
        )
        assert console_events.main(args) == 0
        stub.assert_no_pending_responses()
    printed = capsys.readouterr().out
    assert "_ev-backfill-schema with backfill events: shop" in printed
    assert "_ev-staleness-sweep-schema with sweep events" in printed
