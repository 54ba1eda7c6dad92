"""`evergreen register-webhooks --klaviyo` against the Klaviyo sandbox (requests checked against Klaviyo's
OpenAPI spec): it creates the shop's system webhook once, leaves it alone after, repairs it when it drifts,
and, where the account may not use the Webhooks API, says the engagement poll covers it (exit 0) beside the steps
for Klaviyo's UI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from evergreen_cli.commands.register_klaviyo_webhook import EXIT_USE_THE_UI, UI_TOPICS
from evergreen_cli.local_stack.resources import LocalSecrets
from evergreen_cli.main import main
from evergreen_cli.sandboxes.klaviyo_api import SandboxServer, start_sandbox
from evergreen_cli.sandboxes.klaviyo_spec import default_spec_path

SHOP = "klaviyo-hook.myshopify.com"
URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/klaviyo"
EXPECTED_URL = f"{URL}?shop={SHOP}"


@pytest.fixture(scope="module")
def klaviyo_sandbox() -> Iterator[SandboxServer]:
    if default_spec_path() is None:
        pytest.skip("Klaviyo's OpenAPI spec (../shared/klaviyo/openapi/stable.json) is absent")
    server = start_sandbox(port=0, strict=True)
    yield server
    server.stop()


@pytest.fixture
def sandbox(local_resources, klaviyo_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    environment = local_resources.function_environment("KlaviyoWebhookFunction")
    environment["KLAVIYO_BASE_URL"] = klaviyo_sandbox.url
    state = tmp_path / "env.json"
    state.write_text(json.dumps(environment))
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(state))
    klaviyo_sandbox.clear()
    return klaviyo_sandbox


def register(*flags: str) -> int:
    return main(["register-webhooks", "--klaviyo", "--shop", SHOP, "--url", URL, *flags])


def assert_every_request_met_the_spec(sandbox: SandboxServer) -> None:
    for request in sandbox.requests():
        assert request["spec_valid"], (request["method"], request["path"], request["spec_errors"])


def test_it_creates_the_webhook_with_the_shop_in_the_url_the_topics_and_the_stored_secret(sandbox, capsys):
    assert register() == 0

    [hook] = sandbox.webhooks
    assert hook["name"] == f"Evergreen {SHOP}"
    assert hook["endpoint_url"] == EXPECTED_URL
    assert hook["secret_key"] == LocalSecrets().klaviyo_webhook_secret
    assert set(UI_TOPICS) <= set(hook["topics"])
    assert_every_request_met_the_spec(sandbox)
    out = capsys.readouterr().out
    assert "created" in out and LocalSecrets().klaviyo_webhook_secret not in out


def test_a_second_run_leaves_it_alone(sandbox, capsys):
    register()
    capsys.readouterr()

    assert register() == 0

    assert [r["method"] for r in sandbox.requests()].count("POST") == 1
    assert not any(r["method"] == "PATCH" for r in sandbox.requests())
    assert "left alone" in capsys.readouterr().out


def test_a_webhook_pointing_elsewhere_is_updated_in_place(sandbox, capsys):
    register()
    main(["register-webhooks", "--klaviyo", "--shop", SHOP, "--url", "https://old.example.com/webhooks/klaviyo"])
    capsys.readouterr()

    assert register() == 0

    [hook] = sandbox.webhooks
    assert hook["endpoint_url"] == EXPECTED_URL
    assert "changed" in capsys.readouterr().out
    assert_every_request_met_the_spec(sandbox)


def test_a_dry_run_creates_nothing(sandbox, capsys):
    assert register("--dry-run") == 0

    assert sandbox.webhooks == []
    assert "would be created" in capsys.readouterr().out


@pytest.mark.parametrize("status", [403, 404])
def test_an_account_without_the_webhooks_api_is_covered_by_the_poll_and_gets_the_steps_for_klaviyos_ui(
    sandbox, capsys, status
):
    sandbox.webhooks_api(status)

    assert register() == 0

    out = capsys.readouterr().out
    assert f"the engagement poll covers {SHOP}" in out and "Klaviyo CDP" in out
    assert "Settings > Webhooks" in out and EXPECTED_URL in out
    assert all(topic in out for topic in UI_TOPICS)
    assert LocalSecrets().klaviyo_webhook_secret not in out, "the secret is named, never printed"
    assert sandbox.webhooks == []


def test_a_key_klaviyo_rejects_gets_the_steps_and_exit_code_4_since_the_poll_cannot_read_either(sandbox, capsys):
    sandbox.fail_next(401)

    assert register() == EXIT_USE_THE_UI

    out = capsys.readouterr().out
    assert "rejected the API key (401)" in out and "poll covers" not in out
