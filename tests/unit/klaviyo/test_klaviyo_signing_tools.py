"""The CLI signer and the committed sample events sign Klaviyo deliveries the way Klaviyo does."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evergreen.klaviyo.webhooks import TIMESTAMP_HEADER, parse_envelope, verify_klaviyo_signature
from evergreen_cli.commands.sample_events import AT
from evergreen_cli.commands.send_webhook import klaviyo_headers
from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_KLAVIYO_SECRET

EVENTS = Path(__file__).resolve().parents[3] / "events"
IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")


def test_send_webhook_klaviyo_signs_with_an_http_date_as_klaviyo_does() -> None:
    body = (EVENTS / "klaviyo" / "email_opened.json").read_bytes()
    now = datetime(2024, 1, 4, 18, 5, 25, tzinfo=UTC)

    headers = klaviyo_headers(body, "local-secret-0123456789", now)

    assert headers[TIMESTAMP_HEADER] == "Thu, 04 Jan 2024 18:05:25 GMT"
    assert verify_klaviyo_signature(body, headers, "local-secret-0123456789", now)


@pytest.mark.parametrize("path", sorted((EVENTS / "api").glob("klaviyo_*.json")), ids=lambda path: path.name)
def test_klaviyo_http_api_sample_events_are_signed_as_klaviyo_signs(path: Path) -> None:
    event = json.loads(path.read_text())
    body = event["body"].encode()

    assert IMF_FIXDATE.match(event["headers"]["klaviyo-timestamp"])
    assert verify_klaviyo_signature(body, event["headers"], DEFAULT_LOCAL_KLAVIYO_SECRET, AT)
    assert event["queryStringParameters"]["shop"]
    assert parse_envelope(body, event["headers"]).engagements


def test_the_profile_id_only_sample_names_nobody_but_the_klaviyo_profile() -> None:
    body = (EVENTS / "klaviyo" / "email_opened_profile_id_only.json").read_bytes()

    [engagement] = parse_envelope(body).engagements

    assert (engagement.email, engagement.phone) == (None, None)
    assert engagement.klaviyo_profile_id
