"""events/ stays usable: signed with the local default secret, and what the functions accept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evergreen.domain.changes import SegmentChange
from evergreen.service.sweep import SweepRequest
from evergreen.shopify.hmac import verify_shopify_hmac
from evergreen_cli.commands.sample_events import build
from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_SHOPIFY_SECRET

EVENTS = Path(__file__).resolve().parents[3] / "events"


@pytest.mark.parametrize("path", sorted(build()), ids=lambda path: path.name)
def test_committed_events_match_what_make_events_writes(path: Path):
    assert path.exists(), "run `make events`"
    assert json.loads(path.read_text()) == json.loads(json.dumps(build()[path])), "run `make events`"


@pytest.mark.parametrize("path", sorted((EVENTS / "api").glob("shopify_*.json")), ids=lambda path: path.name)
def test_http_api_events_are_signed_with_the_local_default_secret(path: Path):
    event = json.loads(path.read_text())

    body = event["body"].encode()
    assert verify_shopify_hmac(body, event["headers"]["x-shopify-hmac-sha256"], DEFAULT_LOCAL_SHOPIFY_SECRET)
    assert event["version"] == "2.0"


def test_the_sqs_batch_carries_segment_changes():
    batch = json.loads((EVENTS / "sqs" / "segment_changes.json").read_text())

    changes = [SegmentChange.model_validate_json(record["body"]) for record in batch["Records"]]

    assert [change.version for change in changes] == [1, 7]


@pytest.mark.parametrize("path", sorted((EVENTS / "sweep").glob("*.json")), ids=lambda path: path.name)
def test_every_sweep_event_is_a_request_the_sweep_understands(path: Path):
    event = json.loads(path.read_text())

    request = SweepRequest() if event.get("source") == "aws.events" else SweepRequest.model_validate(event)

    assert isinstance(request, SweepRequest)
