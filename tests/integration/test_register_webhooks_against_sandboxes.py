"""`evergreen register-webhooks` against the Shopify Admin sandbox, for a stack whose resources are on moto
server: it makes the subscriptions exactly Evergreen's, says what it did, and a second run changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from evergreen.api_versions import klaviyo_window, shopify_support_ends
from evergreen.settings import KLAVIYO_REVISION, SHOPIFY_API_VERSION
from evergreen.shopify import SUBSCRIPTION_TOPICS
from evergreen.shopify.admin import WebhookAdmin, topic_enum
from evergreen.shopify.bulk import GraphQLError
from evergreen_cli.main import main
from evergreen_cli.sandboxes.shopify_admin import ShopifySandbox

SHOP = "register-test.myshopify.com"
URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/shopify"
OLD_URL = "https://old.execute-api.eu-west-1.amazonaws.com/webhooks/shopify"
LOCAL_URL = "http://127.0.0.1:9/webhooks/shopify"
"""A stack URL nothing answers on (the doctor's route self-test fails at once, never leaving the machine)."""
NEEDED = sorted(topic_enum(topic) for topic in SUBSCRIPTION_TOPICS)


@pytest.fixture
def sandbox(local_resources, shopify_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ShopifySandbox:
    """A running local stack (its state file) whose Shopify Admin is the sandbox, with no subscriptions."""
    environment = local_resources.function_environment("ShopifyWebhookFunction")
    environment["SHOPIFY_ADMIN_BASE_URL"] = shopify_sandbox.url
    state = tmp_path / "env.json"
    state.write_text(json.dumps(environment))
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(state))
    shopify_sandbox.set_subscriptions([])
    shopify_sandbox.set_app(
        scopes=["read_customers", "read_orders", "read_all_orders"], webhook_api_version=SHOPIFY_API_VERSION
    )
    shopify_sandbox.state.faults.clear()
    return shopify_sandbox


def subscribed(sandbox: ShopifySandbox) -> dict[str, str]:
    return {item["topic"]: item["uri"] for item in sandbox.subscriptions}


def register(*flags: str) -> int:
    return main(["register-webhooks", "--shop", SHOP, "--url", URL, *flags])


def test_a_shop_without_subscriptions_gets_every_topic_at_the_stack_url_in_json(sandbox, capsys):
    assert register() == 0

    assert subscribed(sandbox) == dict.fromkeys(NEEDED, URL)
    assert {item["format"] for item in sandbox.subscriptions} == {"JSON"}
    out = capsys.readouterr().out
    assert f"{len(NEEDED)} created, 0 changed, 0 left alone, 0 deleted" in out
    assert "ORDERS_CREATE" in out and "CUSTOMER_TAGS_ADDED" in out
    assert "shopify-app-toml" in out, "it says where the compliance topics are set"


def test_a_second_run_changes_nothing(sandbox, capsys):
    register()
    before = sandbox.subscriptions
    capsys.readouterr()
    sandbox.state.requests.clear()

    assert register() == 0

    assert sandbox.subscriptions == before
    mutations = [r for r in sandbox.requests if "mutation" in (r["body"] or {}).get("query", "")]
    assert mutations == []
    assert f"0 created, 0 changed, {len(NEEDED)} left alone, 0 deleted" in capsys.readouterr().out


def test_stale_subscriptions_are_moved_here_and_unneeded_ones_here_are_deleted(sandbox, capsys):
    sandbox.set_subscriptions(
        [
            {"topic": "ORDERS_CREATE", "uri": OLD_URL},
            {"topic": "CUSTOMERS_UPDATE", "uri": URL, "format": "XML"},
            {"topic": "PRODUCTS_UPDATE", "uri": URL},
            {"topic": "PRODUCTS_CREATE", "uri": "https://someone-else.example.com/hooks"},
        ]
    )
    orders_create_id = next(item["id"] for item in sandbox.subscriptions if item["topic"] == "ORDERS_CREATE")

    assert register() == 0

    now = {item["topic"]: item for item in sandbox.subscriptions}
    assert now["ORDERS_CREATE"]["uri"] == URL and now["ORDERS_CREATE"]["id"] == orders_create_id, "updated in place"
    assert now["CUSTOMERS_UPDATE"]["format"] == "JSON"
    assert "PRODUCTS_UPDATE" not in now
    assert now["PRODUCTS_CREATE"]["uri"] == "https://someone-else.example.com/hooks", "not Evergreen's: left alone"
    out = capsys.readouterr().out
    assert f"{len(NEEDED) - 2} created, 2 changed, 0 left alone, 1 deleted" in out
    assert f"was {OLD_URL}" in out


def test_a_dry_run_shows_the_plan_and_changes_nothing(sandbox, capsys):
    sandbox.set_subscriptions([{"topic": "ORDERS_CREATE", "uri": OLD_URL}])
    before = sandbox.subscriptions

    assert register("--dry-run") == 0

    assert sandbox.subscriptions == before
    out = capsys.readouterr().out
    assert "would create" in out and "would change" in out


def test_more_subscriptions_than_a_page_are_all_read(sandbox, capsys):
    sandbox.set_app(page_size=3)
    register()
    capsys.readouterr()

    assert register() == 0

    assert f"0 created, 0 changed, {len(NEEDED)} left alone" in capsys.readouterr().out
    assert len(sandbox.subscriptions) == len(NEEDED)


def test_subscriptions_at_another_api_version_are_reported_with_the_fix(sandbox, capsys):
    sandbox.set_app(webhook_api_version="2024-01")

    assert register() == 0

    out = capsys.readouterr().out
    assert "API version 2024-01" in out and SHOPIFY_API_VERSION in out


def test_a_missing_scope_ends_in_one_line_naming_it(sandbox, capsys):
    sandbox.set_app(scopes=["read_customers"])

    assert register() == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "read_orders" in err


def test_a_revoked_token_ends_in_one_line(sandbox, capsys):
    sandbox.fail_next("revoked")

    assert register() == 3

    assert "401" in capsys.readouterr().err


def test_the_sandbox_rejects_a_query_it_does_not_understand(sandbox):
    admin = WebhookAdmin(SHOP, "shpat_x", base_url=sandbox.url, http=httpx.Client())
    with pytest.raises(GraphQLError, match="does not understand"):
        admin.graphql("query { webhookSubscriptions(first: 5) { nodes { id } } }")


# -- doctor: the Shopify token and the subscriptions ------------------------------------------------


def doctor_lines(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """The doctor's output by check name: its line and, for a failure, the fix under it."""
    found: dict[str, str] = {}
    name = ""
    for line in capsys.readouterr().out.splitlines():
        if line[:1] in "✓✗?!":
            name = line[2:].split(":")[0]
            found[name] = line
        elif line.startswith("    fix:") and name:
            found[name] += "\n" + line
    return found


def doctor() -> int:
    return main(["doctor", "--url", LOCAL_URL, "--shop", SHOP])


def test_doctor_passes_the_shopify_checks_once_the_webhooks_are_registered(sandbox, capsys):
    main(["register-webhooks", "--shop", SHOP, "--url", LOCAL_URL])
    capsys.readouterr()

    doctor()

    checks = doctor_lines(capsys)
    assert checks["Shopify Admin token"].startswith("✓"), checks["Shopify Admin token"]
    assert checks["Shopify subscriptions"].startswith("✓"), checks["Shopify subscriptions"]


def test_doctor_names_missing_subscriptions_and_the_command_that_registers_them(sandbox, capsys):
    sandbox.set_subscriptions([{"topic": "ORDERS_CREATE", "uri": OLD_URL}])

    assert doctor() == 1

    line = doctor_lines(capsys)["Shopify subscriptions"]
    assert line.startswith("✗")
    assert f"{len(NEEDED) - 1} topic(s) not subscribed, 1 pointing elsewhere" in line
    assert f"evergreen register-webhooks --shop {SHOP}" in line


def test_doctor_names_a_missing_scope(sandbox, capsys):
    sandbox.set_app(scopes=["read_customers"])

    assert doctor() == 1

    line = doctor_lines(capsys)["Shopify Admin token"]
    assert line.startswith("✗") and "lacks read_orders" in line


def test_doctor_says_what_a_token_without_read_all_orders_misses(sandbox, capsys):
    sandbox.set_app(scopes=["read_customers", "read_orders"])

    assert doctor() == 1

    line = doctor_lines(capsys)["Shopify Admin token"]
    assert line.startswith("✗") and "lacks read_all_orders" in line and "last 60 days of orders" in line


def test_doctor_reports_a_revoked_token(sandbox, capsys):
    sandbox.fail_next("revoked")

    assert doctor() == 1

    line = doctor_lines(capsys)["Shopify Admin token"]
    assert line.startswith("✗") and "401" in line


def test_doctor_warns_of_subscriptions_delivered_at_an_older_api_version_and_names_the_fix(sandbox, capsys):
    sandbox.set_app(webhook_api_version="2025-10")
    main(["register-webhooks", "--shop", SHOP, "--url", LOCAL_URL])
    capsys.readouterr()

    doctor()

    line = doctor_lines(capsys)["Shopify subscriptions"]
    assert line.startswith("! ") and "2025-10" in line and SHOPIFY_API_VERSION in line
    assert "evergreen shopify-app-toml" in line and "fix:" in line


def test_register_webhooks_shows_the_version_each_subscription_is_delivered_at(sandbox, capsys):
    sandbox.set_app(webhook_api_version="2025-10")

    main(["register-webhooks", "--shop", SHOP, "--url", LOCAL_URL])

    out = capsys.readouterr().out
    header, *rows = out.splitlines()[: len(NEEDED) + 1]
    assert header.split() == ["result", "topic", "version", "address"]
    assert all(row.split()[2] == "2025-10" for row in rows), rows
    assert "delivered at API version 2025-10" in out


def test_doctor_prints_both_pins_with_the_day_their_support_ends(sandbox, capsys):
    doctor()

    line = doctor_lines(capsys)["API versions"]
    assert f"Shopify {SHOPIFY_API_VERSION} (supported until {shopify_support_ends(SHOPIFY_API_VERSION)}" in line
    window = klaviyo_window(KLAVIYO_REVISION)
    assert f"Klaviyo revision {KLAVIYO_REVISION} (stable until {window.stable_until}" in line
    assert f"retired {window.retired_on}" in line


def test_doctor_skips_the_subscriptions_check_for_subscriptions_shipped_in_the_app_toml(sandbox, capsys):
    main(["doctor", "--url", LOCAL_URL, "--shop", SHOP, "--app-toml"])

    line = doctor_lines(capsys)["Shopify subscriptions"]
    assert line.startswith("? ") and "shopify.app.toml" in line
