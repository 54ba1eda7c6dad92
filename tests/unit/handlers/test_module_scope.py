"""What a cold start pays: each function creates only the clients it uses, and tracing off loads nothing of X-Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evergreen.observability import NoTracer, make_tracer, tracing_enabled

ROOT = Path(__file__).resolve().parents[3]

_PROBE = """
import importlib.util, json, sys
import botocore.session
created = []
original = botocore.session.Session.create_client
def create_client(self, service_name, *args, **kwargs):
    created.append(service_name)
    return original(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = create_client
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
print(json.dumps({
    "clients": sorted(created),
    "xray": sorted(name for name in sys.modules if name.startswith("aws_xray_sdk")),
    "tracer": type(module.tracer).__name__,
}))
"""

CLIENTS = {
    "shopify_webhook": ["dynamodb", "secretsmanager", "sqs"],
    "klaviyo_webhook": ["dynamodb", "secretsmanager", "sqs"],
    "shopify_eventbridge": ["dynamodb", "secretsmanager", "sqs"],  # the shared ingest; no secret is ever read
    "staleness_sweep": ["dynamodb", "sqs"],
    "segment_sync": ["dynamodb"],  # SQS only once a failed item is postponed or dead-lettered
}


def _init(function: str, **environment: str) -> dict[str, object]:
    """Import the function's module in a fresh interpreter, as Lambda's init does (no AWS call is made at import)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / function), str(ROOT / "layers" / "evergreen")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_LAMBDA_FUNCTION_NAME": f"test-{function}",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        "PROFILES_TABLE": "profiles",
        "SEGMENT_CHANGES_QUEUE_URL": "http://127.0.0.1:9/123456789012/changes",
        "SHOPIFY_SECRETS_ID": "shopify",
        "KLAVIYO_SECRETS_ID": "klaviyo",
        "EXPORTS_BUCKET": "exports",
        **environment,
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT / "functions" / function / "app.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("function", sorted(CLIENTS))
def test_with_tracing_off_a_function_creates_only_its_clients_and_imports_nothing_of_xray(function: str) -> None:
    init = _init(function, POWERTOOLS_TRACE_DISABLED="true")
    assert init["clients"] == CLIENTS[function]
    assert init["xray"] == []
    assert init["tracer"] == "NoTracer"


def test_with_tracing_active_the_functions_trace_with_powertools_and_xray() -> None:
    init = _init("shopify_webhook", POWERTOOLS_TRACE_DISABLED="false")
    assert init["tracer"] == "Tracer"
    assert init["xray"]


def test_tracing_follows_powertools_trace_disabled() -> None:
    assert tracing_enabled({})
    assert tracing_enabled({"POWERTOOLS_TRACE_DISABLED": "false"})
    assert not tracing_enabled({"POWERTOOLS_TRACE_DISABLED": "true"})
    assert not tracing_enabled({"POWERTOOLS_TRACE_DISABLED": "1"})
    assert isinstance(make_tracer({"POWERTOOLS_TRACE_DISABLED": "TRUE"}), NoTracer)


def test_the_no_tracer_leaves_decorated_functions_as_they_are() -> None:
    tracer = NoTracer()

    def handler(event: dict[str, str], context: object) -> dict[str, str]:
        return event

    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_method(handler) is handler
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer.capture_method(capture_error=False)(handler) is handler
    tracer.put_annotation("ColdStart", True)
    tracer.put_metadata("response", {"ok": True})
