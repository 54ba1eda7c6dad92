"""Local stack, end to end: a signed orders/create webhook in, the Klaviyo sandbox's profile-import out.

e2e.webhook_to_klaviyo_ms   {"p50": ms, "max": ms}   from POST to the recorded Klaviyo request
e2e.webhook_response_ms_p50                           the HTTP API's answer to the webhook
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import statistics
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 20
SHOP = "bench-e2e.myshopify.com"


def run() -> dict[str, object]:
    from evergreen.domain.profile import customer_profile_key  # noqa: PLC0415
    from evergreen_cli.commands.send_webhook import shopify_headers  # noqa: PLC0415
    from evergreen_cli.local_stack.resources import DEFAULT_LOCAL_SHOPIFY_SECRET  # noqa: PLC0415
    from evergreen_cli.local_stack.stack import LocalStack, options_on_free_ports  # noqa: PLC0415

    logging.getLogger().setLevel(logging.WARNING)
    template = json.loads((ROOT / "events" / "shopify" / "orders_create.json").read_text())
    options = options_on_free_ports(
        sweep_every=None, engagement_poll_every=None, use_sandbox=True, environ={}, state_file=None
    )
    latencies: list[float] = []
    responses: list[float] = []
    with contextlib.redirect_stdout(io.StringIO()), LocalStack(options) as stack, httpx.Client() as http:
        for round_number in range(ROUNDS):
            customer_id = 800_000_000_000_000_000 + round_number
            template["customer"]["id"] = customer_id
            template["id"] = customer_id + 1
            body = json.dumps(template).encode()
            headers = shopify_headers(body, "orders/create", SHOP, DEFAULT_LOCAL_SHOPIFY_SECRET)
            started = time.perf_counter()
            answer = http.post(stack.shopify_webhook_url, content=body, headers=headers)
            responses.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200, answer.text
            marker = customer_profile_key(str(customer_id))
            while time.perf_counter() - started < 30:
                recorded = stack.sandbox.requests() if stack.sandbox else []
                if any(
                    request["path"] == "/api/profile-import" and marker in json.dumps(request["json"])
                    for request in recorded
                ):
                    latencies.append((time.perf_counter() - started) * 1000)
                    break
                time.sleep(0.01)
    return {
        "e2e.webhook_to_klaviyo_ms": {
            "p50": round(statistics.median(latencies), 1),
            "max": round(max(latencies), 1),
            "rounds": len(latencies),
        },
        "e2e.webhook_response_ms_p50": round(statistics.median(responses), 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
