"""`evergreen seed-shop` and `evergreen backfill` against the Shopify and Klaviyo sandboxes and moto server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evergreen_local.cli import main

SHOP = "cli-backfill.myshopify.com"


@pytest.fixture
def running_stack(local_resources, shopify_sandbox, klaviyo_sandbox, tmp_path: Path, monkeypatch) -> None:
    """What `evergreen run` leaves behind: the functions' environment, with the sandboxes' URLs."""
    resources = local_resources.with_klaviyo_base_url(klaviyo_sandbox.url)
    environment = resources.function_environment("ShopifyWebhookFunction")
    environment["SHOPIFY_ADMIN_BASE_URL"] = shopify_sandbox.url
    state = tmp_path / "env.json"
    state.write_text(json.dumps(environment))
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(state))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    shopify_sandbox.state.faults.clear()


def test_seed_shop_then_backfill_is_a_newcomers_first_session(running_stack, shopify_sandbox, capsys):
    assert main(["seed-shop", "--customers", "5", "--seed", "7", "--shop", SHOP]) == 0
    assert "5 customers" in capsys.readouterr().out

    code = main(["backfill", "--shop", SHOP, "--no-progress"])

    summary = capsys.readouterr().out
    assert code == 0
    assert "finished" in summary and "True" in summary
    assert "bulk jobs" in summary


def test_a_revoked_token_exits_with_a_clear_message_and_code(running_stack, shopify_sandbox, capsys):
    main(["seed-shop", "--customers", "2", "--shop", SHOP])
    shopify_sandbox.fail_next("revoked")

    code = main(["backfill", "--shop", SHOP, "--no-progress"])

    assert code == 3
    assert "revoked" in capsys.readouterr().err
