"""`evergreen seed-shop` and `evergreen backfill` against the Shopify and Klaviyo sandboxes and moto server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evergreen.settings import Settings
from evergreen.storage.backfill_progress import DynamoBackfillProgress
from evergreen.wiring import Edges
from evergreen_cli.main import main
from tests.integration.stack_state import leave_stack_state

SHOP = "cli-backfill.myshopify.com"


@pytest.fixture
def running_stack(local_resources, shopify_sandbox, klaviyo_sandbox, tmp_path: Path, monkeypatch) -> None:
    """What `evergreen run` leaves behind: the functions' environment, with the sandboxes' URLs."""
    resources = local_resources.with_klaviyo_base_url(klaviyo_sandbox.url)
    environment = resources.function_environment("ShopifyWebhookFunction")
    environment["SHOPIFY_ADMIN_BASE_URL"] = shopify_sandbox.url
    leave_stack_state(environment, tmp_path, monkeypatch)
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


def _members_by_segment(shop: str) -> dict[str, list[str]]:
    edges = Edges(Settings.from_env())
    members: dict[str, list[str]] = {name: [] for name in edges.definitions.names}
    for key in edges.store.keys_in_shop(shop):
        profile = edges.store.load(shop, key) if key.startswith(("customer#", "guest#")) else None
        for segment in profile.membership if profile else ():
            members[segment].append(key)
    return members


def test_a_newcomers_seeded_store_puts_members_in_every_segment_and_explain_says_why(running_stack, capsys):
    assert main(["seed-shop", "--customers", "100", "--seed", "3", "--shop", SHOP]) == 0
    assert "engagement events into the Klaviyo sandbox" in capsys.readouterr().out
    assert main(["backfill", "--shop", SHOP, "--no-progress"]) == 0
    capsys.readouterr()

    members = _members_by_segment(SHOP)

    assert [segment for segment, keys in members.items() if not keys] == []
    for segment in ("lapsed", "vip", "engaged", "unengaged", "abandoned_checkout"):
        customer_id = members[segment][0].removeprefix("customer#")
        assert main(["explain", "--shop", SHOP, "--customer-id", customer_id, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert segment in report["segments"] and report["explanation"][segment]["member"]


def test_a_backfill_without_read_all_orders_says_what_it_missed_and_records_its_window(
    running_stack, shopify_sandbox, capsys
):
    assert main(["seed-shop", "--customers", "20", "--seed", "5", "--shop", SHOP]) == 0
    store = shopify_sandbox.state
    oldest = min(order["createdAt"] for order in store.orders)
    shopify_sandbox.set_app(scopes=["read_customers", "read_orders"])
    try:
        code = main(["backfill", "--shop", SHOP, "--no-progress"])
    finally:
        shopify_sandbox.set_app(scopes=["read_customers", "read_orders", "read_all_orders"])

    out, err = capsys.readouterr()
    assert code == 0
    window = next(line.split()[-1] for line in out.splitlines() if line.startswith("orders_read_from"))
    assert oldest < window
    assert "lacks read_all_orders" in err and f"orders placed before {window} were not read" in err
    edges = Edges(Settings.from_env())
    progress = DynamoBackfillProgress(edges.dynamodb, edges.settings.profiles_table).load(SHOP)
    assert progress is not None and progress.orders_from is not None
    assert progress.orders_from.date().isoformat() == window
