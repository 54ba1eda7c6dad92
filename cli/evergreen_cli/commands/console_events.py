"""`evergreen console-events --aws`: publish events/sweep and events/backfill as shareable Lambda console
test events (the sweep's on the StalenessSweepFunction, the backfill's on the BackfillFunction).

The Lambda console reads shareable test events from the EventBridge schema registry
`lambda-testevent-schemas`, schema `_<function name>-schema`, as OpenAPI 3 `components.examples`.
CloudFormation has no resource for them, so this command creates the registry when missing and
upserts the schema after each deploy.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from evergreen_cli.aws_stack import DEFAULT_STACK, stack_outputs

REGISTRY = "lambda-testevent-schemas"
EVENTS_DIR = Path(__file__).resolve().parents[3] / "events"
SWEEP_EVENTS_DIR = EVENTS_DIR / "sweep"
BACKFILL_EVENTS_DIR = EVENTS_DIR / "backfill"

SWEEP_PROPERTIES: dict[str, Any] = {
    "dry_run": {"type": "boolean"},
    "full": {"type": "boolean"},
    "segments": {"type": "array", "items": {"type": "string"}},
}
BACKFILL_PROPERTIES: dict[str, Any] = {
    "shop": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*\\.myshopify\\.com$"},
    "since": {"type": "string", "format": "date", "nullable": True},
    "entered_events": {"type": "boolean"},
    "engagement_days": {"type": "integer", "minimum": 0, "maximum": 3650},
}
"""What an ops person sets in events/backfill/*.json (see evergreen.backfill_wiring.BackfillRequest)."""


@dataclass(frozen=True)
class ConsoleEvents:
    """One function's shared test events: where they live and which stack output names the function."""

    label: str
    directory: Path
    function_output: str
    properties: dict[str, Any]


CONSOLE_EVENTS = (
    ConsoleEvents("sweep", SWEEP_EVENTS_DIR, "StalenessSweepFunctionName", SWEEP_PROPERTIES),
    ConsoleEvents("backfill", BACKFILL_EVENTS_DIR, "BackfillFunctionName", BACKFILL_PROPERTIES),
)


def schema_name(function_name: str) -> str:
    return f"_{function_name}-schema"


def load_examples(directory: Path = SWEEP_EVENTS_DIR) -> dict[str, Any]:
    """Every *.json file of `directory` (events/sweep by default), named by its stem ("dry-run", "full", ...)."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def schema_document(examples: dict[str, Any], properties: dict[str, Any] | None = None) -> str:
    """The OpenAPI 3 document the Lambda console reads its shareable test events from (the sweep's
    request properties unless given others)."""
    document = {
        "openapi": "3.0.0",
        "info": {"version": "1.0.0", "title": "Event"},
        "paths": {},
        "components": {
            "schemas": {
                "Event": {
                    "type": "object",
                    "properties": SWEEP_PROPERTIES if properties is None else properties,
                }
            },
            "examples": {name: {"value": value} for name, value in examples.items()},
        },
    }
    return json.dumps(document, indent=2, sort_keys=True)


def publish(schemas: Any, function_name: str, content: str) -> str:
    """Create the registry if missing, then create or update the function's schema. Returns the action."""
    try:
        schemas.describe_registry(RegistryName=REGISTRY)
    except ClientError as error:
        if error.response["Error"]["Code"] != "NotFoundException":
            raise
        schemas.create_registry(RegistryName=REGISTRY, Description="Lambda console shareable test events")
    name = schema_name(function_name)
    try:
        schemas.describe_schema(RegistryName=REGISTRY, SchemaName=name)
    except ClientError as error:
        if error.response["Error"]["Code"] != "NotFoundException":
            raise
        schemas.create_schema(RegistryName=REGISTRY, SchemaName=name, Type="OpenApi3", Content=content)
        return "created"
    schemas.update_schema(RegistryName=REGISTRY, SchemaName=name, Type="OpenApi3", Content=content)
    return "updated"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--aws", action="store_true", help="publish to the deployed stack (otherwise print)")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration's)")
    parser.add_argument("--function-name", help="the sweep function's name (default: from the stack outputs)")
    parser.add_argument("--backfill-function-name", help="the backfill function's name (default: from the outputs)")


def main(args: argparse.Namespace) -> int:
    documents = {
        events.label: schema_document(load_examples(events.directory), events.properties) for events in CONSOLE_EVENTS
    }
    if not args.aws:
        for label, content in documents.items():
            print(f"# {label}\n{content}")
        print("\n(printed only; add --aws to publish to the deployed stack)")
        return 0
    given = {"sweep": args.function_name, "backfill": args.backfill_function_name}
    outputs = stack_outputs(args.stack, args.region) if not all(given.values()) else {}
    schemas = boto3.client("schemas", region_name=args.region)
    for events in CONSOLE_EVENTS:
        function_name = given[events.label] or outputs[events.function_output]
        action = publish(schemas, function_name, documents[events.label])
        names = ", ".join(load_examples(events.directory))
        print(f"{action} {REGISTRY}/{schema_name(function_name)} with {events.label} events: {names}")
    return 0
