"""Read template.yaml (CloudFormation short-form tags included) and answer questions about it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

_SCALAR_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Base64": "Fn::Base64",
    "Sub": "Fn::Sub",
}
_SEQUENCE_TAGS = {
    "And": "Fn::And",
    "Cidr": "Fn::Cidr",
    "Equals": "Fn::Equals",
    "FindInMap": "Fn::FindInMap",
    "GetAtt": "Fn::GetAtt",
    "If": "Fn::If",
    "Join": "Fn::Join",
    "Not": "Fn::Not",
    "Or": "Fn::Or",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "Sub": "Fn::Sub",
    "Transform": "Fn::Transform",
    "Base64": "Fn::Base64",
    "ImportValue": "Fn::ImportValue",
    "GetAZs": "Fn::GetAZs",
}


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that turns `!Ref x` into {"Ref": "x"}, `!GetAtt a.b` into {"Fn::GetAtt": ["a", "b"]}..."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            resource, _, attribute = str(value).partition(".")
            return {"Fn::GetAtt": [resource, attribute]}
        name = _SCALAR_TAGS.get(suffix, f"Fn::{suffix}")
        return {name: value}
    if isinstance(node, yaml.SequenceNode):
        return {_SEQUENCE_TAGS.get(suffix, f"Fn::{suffix}"): loader.construct_sequence(node, deep=True)}
    if isinstance(node, yaml.MappingNode):
        return {f"Fn::{suffix}": loader.construct_mapping(node, deep=True)}
    raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}", node.start_mark)


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain dicts and lists, intrinsic functions in their long form."""
    loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return cast(dict[str, Any], loaded)


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function with Globals merged in."""

    logical_id: str
    code_uri: Path
    handler: str
    timeout: int
    memory_size: int
    environment: dict[str, Any]
    function_name: Any | None


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str
    function: str
    payload_format_version: str

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class SqsSource:
    function: str
    queue: str
    """Logical id of the queue."""
    batch_size: int
    batching_window_seconds: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class ScheduleSource:
    function: str
    schedule: Any
    """The schedule expression, or the intrinsic (usually {"Ref": "SweepSchedule"}) producing it."""


def resources(template: Mapping[str, Any], type_name: str | None = None) -> dict[str, dict[str, Any]]:
    """Resources by logical id, optionally only those of one type."""
    found = cast(dict[str, dict[str, Any]], template.get("Resources", {}))
    return {lid: res for lid, res in found.items() if type_name is None or res.get("Type") == type_name}


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    """Each parameter's default, as the string CloudFormation would substitute."""
    params = cast(dict[str, dict[str, Any]], template.get("Parameters", {}))
    return {name: str(spec["Default"]) for name, spec in params.items() if "Default" in spec}


def _function_globals(template: Mapping[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], template.get("Globals", {}).get("Function", {}))


def _literal_int(value: Any, template: Mapping[str, Any], default: int) -> int:
    if isinstance(value, dict) and "Ref" in value:
        return int(parameter_defaults(template).get(value["Ref"], default))
    return int(value) if value is not None else default


def functions(template: Mapping[str, Any], root: Path = REPO_ROOT) -> dict[str, FunctionSpec]:
    """Every serverless function by logical id, its environment = Globals' merged with its own."""
    defaults = _function_globals(template)
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in resources(template, "AWS::Serverless::Function").items():
        props = resource.get("Properties", {})
        environment = dict(defaults.get("Environment", {}).get("Variables", {}))
        environment.update(props.get("Environment", {}).get("Variables", {}))
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_uri=root / str(props.get("CodeUri", defaults.get("CodeUri", "."))),
            handler=str(props.get("Handler", defaults.get("Handler", "app.lambda_handler"))),
            timeout=_literal_int(props.get("Timeout", defaults.get("Timeout")), template, 3),
            memory_size=_literal_int(props.get("MemorySize", defaults.get("MemorySize")), template, 128),
            environment=environment,
            function_name=props.get("FunctionName"),
        )
    return specs


def _events(template: Mapping[str, Any], event_types: set[str]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in resources(template, "AWS::Serverless::Function").items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") in event_types:
                found.append((logical_id, event.get("Properties", {})))
    return found


def http_routes(template: Mapping[str, Any]) -> list[HttpRoute]:
    """The HttpApi routes (method, path, function)."""
    return [
        HttpRoute(
            method=str(props.get("Method", "ANY")).upper(),
            path=str(props.get("Path", "/")),
            function=logical_id,
            payload_format_version=str(props.get("PayloadFormatVersion", "2.0")),
        )
        for logical_id, props in _events(template, {"HttpApi"})
    ]


def _queue_logical_id(queue: Any) -> str:
    if isinstance(queue, dict) and "Fn::GetAtt" in queue:
        return str(queue["Fn::GetAtt"][0])
    if isinstance(queue, dict) and "Ref" in queue:
        return str(queue["Ref"])
    raise ValueError(f"cannot tell which queue {queue!r} is")


def sqs_sources(template: Mapping[str, Any]) -> list[SqsSource]:
    """The SQS event sources (queue logical id -> function)."""
    return [
        SqsSource(
            function=logical_id,
            queue=_queue_logical_id(props["Queue"]),
            batch_size=int(props.get("BatchSize", 10)),
            batching_window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
            report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        )
        for logical_id, props in _events(template, {"SQS"})
    ]


def schedules(template: Mapping[str, Any]) -> list[ScheduleSource]:
    """The Schedule / ScheduleV2 events."""
    return [
        ScheduleSource(function=logical_id, schedule=props.get("Schedule", props.get("ScheduleExpression")))
        for logical_id, props in _events(template, {"Schedule", "ScheduleV2"})
    ]
