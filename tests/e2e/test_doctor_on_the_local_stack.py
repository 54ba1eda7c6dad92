"""`evergreen doctor` against the local stack: one line per check, ✗ with its fix, exit 0 only when all pass."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evergreen.domain.profile import Profile
from evergreen.settings import KLAVIYO_REVISION, SHOPIFY_API_VERSION, Settings
from evergreen.storage.engagement_poll import DynamoPollCheckpoints
from evergreen.wiring import Edges
from evergreen_cli.commands.doctor import LOCAL_POLL_EVERY
from evergreen_cli.local_stack.resources import SANDBOX_API_KEY
from evergreen_cli.main import main

pytestmark = pytest.mark.e2e

SHOP = "evergreen-demo.myshopify.com"


@pytest.fixture
def doctor(local_stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The doctor's command line for this stack (its state file, its HTTP API URL)."""
    environment = {**local_stack.runtime.environment(), "SHOPIFY_ADMIN_BASE_URL": local_stack.shopify_sandbox.url}
    environment[LOCAL_POLL_EVERY] = "30"  # `make run` polls Klaviyo's Events API on a timer
    state = tmp_path / "env.json"
    state.write_text(json.dumps(environment))
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(state))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SEGMENTS_FILE", raising=False)
    registered = [
        "register-webhooks",
        "--shop",
        SHOP,
        "--url",
        local_stack.shopify_webhook_url,
    ]
    assert main(registered) == 0, "the sandbox shop is subscribed to this stack, as the README's walk-through does"
    klaviyo = ["register-webhooks", "--klaviyo", "--shop", SHOP, "--url", local_stack.klaviyo_webhook_url]
    assert main(klaviyo) == 0, "and its Klaviyo account sends engagement webhooks here"
    local_stack.run_sweep()  # what `make run`'s sweep timer does as soon as the stack is up
    local_stack.run_engagement_poll()  # and its engagement poll timer
    yield ["doctor", "--url", local_stack.shopify_webhook_url]


def lines(out: str) -> dict[str, str]:
    return {line[2:].split(":")[0]: line for line in out.splitlines() if line[:1] in "✓✗?!"}


def test_a_healthy_local_stack_passes_every_check(local_stack, doctor, capsys):
    assert main(doctor) == 0

    checks = lines(capsys.readouterr().out)
    for name in (
        "stack",
        "Shopify webhook secret",
        "Klaviyo secret",
        "Klaviyo API key",
        "webhook route",
        "dead-letter queue",
        "staleness sweep",
        "sync lag",
        "segment definitions",
    ):
        assert checks[name].startswith("✓"), checks[name]
    assert checks["Shopify Admin token"].startswith("✓"), checks["Shopify Admin token"]
    assert checks["Shopify subscriptions"].startswith("✓"), checks["Shopify subscriptions"]
    hook = checks["Klaviyo webhook"]
    assert hook.startswith(f"✓ Klaviyo webhook: 'Evergreen {SHOP}' enabled, 7 topics, sending to"), hook
    assert checks["alarms"] == "? alarms: not checked: no CloudWatch locally"
    versions = checks["API versions"]
    assert versions[2:].startswith(f"API versions: Shopify {SHOPIFY_API_VERSION} (supported until "), versions
    assert f"Klaviyo revision {KLAVIYO_REVISION} (stable until " in versions and ", retired " in versions
    engagement = checks["Klaviyo engagement"]
    assert engagement.startswith(f"✓ Klaviyo engagement: {SHOP}: both, poll last completed "), engagement
    assert engagement.endswith(" s behind"), engagement


def test_a_message_in_the_dead_letter_queue_fails_with_the_redrive_fix(local_stack, doctor, capsys):
    resources = local_stack.resources
    sqs = resources.client("sqs")
    sqs.send_message(QueueUrl=resources.dlq_url, MessageBody="{}")
    try:
        assert main(doctor) == 1
    finally:
        sqs.purge_queue(QueueUrl=resources.dlq_url)

    out = capsys.readouterr().out
    assert lines(out)["dead-letter queue"].startswith("✗ dead-letter queue: 1 segment change(s)")
    assert "fix: fix the cause (SegmentSyncFunction's logs" in out and "then `evergreen redrive`" in out
    assert "1 of 15 checks failed" in out


def test_a_placeholder_secret_fails_and_says_how_to_set_it(local_stack, doctor, capsys):
    resources = local_stack.resources
    secrets = resources.client("secretsmanager")
    original = secrets.get_secret_value(SecretId=resources.shopify_secrets_id)["SecretString"]
    secrets.put_secret_value(SecretId=resources.shopify_secrets_id, SecretString="{}")
    try:
        assert main(doctor) == 1
    finally:
        secrets.put_secret_value(SecretId=resources.shopify_secrets_id, SecretString=original)

    out = capsys.readouterr().out
    assert lines(out)["Shopify webhook secret"].startswith("✗ Shopify webhook secret: still the placeholder {}")
    assert "aws secretsmanager put-secret-value" in out


def test_other_segment_definitions_than_the_swept_ones_fail_with_the_plan_fix(local_stack, doctor, capsys, tmp_path):
    local_stack.run_sweep()  # records the definitions the stack runs
    mine = tmp_path / "mine.yaml"
    mine.write_text("version: 1\nsegments:\n  one:\n    description: d\n    when: {orders_count: {gte: 1}}\n")

    assert main([*doctor, "--segments", str(mine)]) == 1

    assert lines(capsys.readouterr().out)["segment definitions"].startswith(
        "✗ segment definitions: the local stack runs"
    )


def test_a_key_klaviyo_rejects_fails_with_how_to_replace_it(local_stack, doctor, capsys):
    local_stack.sandbox.fail_next(401)

    assert main(doctor) == 1

    out = capsys.readouterr().out
    assert lines(out)["Klaviyo API key"].startswith("✗ Klaviyo API key: Klaviyo rejected *'s key (401)")
    assert "fix: create a private API key in Klaviyo" in out


def test_a_key_without_the_lists_and_metrics_scopes_fails_naming_them_and_what_the_key_needs(
    local_stack, doctor, capsys
):
    local_stack.sandbox.deny_scopes(SANDBOX_API_KEY, ["lists:read", "metrics:read"])
    try:
        assert main(doctor) == 1
    finally:
        local_stack.sandbox.deny_scopes(SANDBOX_API_KEY, [])

    out = capsys.readouterr().out
    assert lines(out)["Klaviyo API key"] == "✗ Klaviyo API key: *'s key lacks lists:read, metrics:read (403)"
    assert (
        "fix: in Klaviyo (Settings > API keys) give the key the scopes profiles, lists and events read/write and "
        "metrics read" in out
    )


def test_doctor_without_a_running_stack_says_make_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(tmp_path / "absent.json"))

    assert main(["doctor"]) == 1

    assert "make run" in capsys.readouterr().err


def test_a_profile_left_overdue_by_the_sweep_fails_with_how_to_run_it(local_stack, doctor, capsys):
    edges = Edges(Settings.from_env(local_stack.runtime.environment()))
    now = datetime.now(UTC)
    overdue = Profile(
        shop="doctor.myshopify.com", customer_id="1", version=1, next_transition_at=now - timedelta(hours=1)
    )
    edges.store.save(overdue, 0, None, now)
    try:
        assert main(doctor) == 1
    finally:
        edges.store.delete("doctor.myshopify.com", [overdue.key])

    out = capsys.readouterr().out
    assert lines(out)["staleness sweep"].startswith("✗ staleness sweep: profiles due more than 15 minutes ago")
    assert "`evergreen sweep`" in out


def test_a_shop_without_a_klaviyo_webhook_fails_with_the_register_command(local_stack, doctor, capsys):
    assert main([*doctor, "--shop", "unhooked.myshopify.com"]) == 1

    out = capsys.readouterr().out
    assert lines(out)["Klaviyo webhook"].startswith(
        "✗ Klaviyo webhook: unhooked.myshopify.com: no Klaviyo webhook named 'Evergreen unhooked.myshopify.com'"
    )
    assert "fix: run `evergreen register-webhooks --klaviyo --shop unhooked.myshopify.com`" in out


def test_a_klaviyo_webhook_pointing_at_another_stack_fails(local_stack, doctor, capsys):
    elsewhere = ["register-webhooks", "--klaviyo", "--shop", SHOP, "--url", "https://old.example.com/webhooks/klaviyo"]
    assert main(elsewhere) == 0
    try:
        assert main(doctor) == 1
    finally:
        main(["register-webhooks", "--klaviyo", "--shop", SHOP, "--url", local_stack.klaviyo_webhook_url])

    line = lines(capsys.readouterr().out)["Klaviyo webhook"]
    assert line.startswith(f"✗ Klaviyo webhook: {SHOP}: 'Evergreen {SHOP}' URL differed"), line
    assert f"{local_stack.klaviyo_webhook_url}?shop={SHOP}" in line


@pytest.mark.parametrize("status", [403, 404])
def test_a_key_that_may_not_read_webhooks_says_what_to_check_in_klaviyo_and_fails_nothing(
    local_stack, doctor, capsys, status
):
    local_stack.sandbox.webhooks_api(status)
    try:
        assert main(doctor) == 0
    finally:
        local_stack.sandbox.webhooks_api(None)

    checks = lines(capsys.readouterr().out)
    line = checks["Klaviyo webhook"]
    assert checks["Klaviyo engagement"].startswith(f"✓ Klaviyo engagement: {SHOP}: poll, "), "the poll covers it"
    assert line.startswith("? Klaviyo webhook: ") and f"({status})" in line, line
    assert "Settings > Webhooks" in line and f"'Evergreen {SHOP}'" in line
    assert f"{local_stack.klaviyo_webhook_url}?shop={SHOP}" in line and "opened_email" in line


def test_an_account_the_poll_cannot_read_fails_with_what_klaviyo_said_and_the_fix(local_stack, doctor, capsys):
    local_stack.sandbox.webhooks_api(403)
    local_stack.sandbox.deny_scopes(SANDBOX_API_KEY, ["events:read", "metrics:read"])
    try:
        local_stack.run_engagement_poll()
        resources = local_stack.resources
        checkpoints = DynamoPollCheckpoints(resources.client("dynamodb"), resources.table_name)
        stuck = checkpoints.load(SHOP)
        assert stuck is not None and stuck.failure == "klaviyo 403 get_metrics"
        key = {"pk": {"S": f"poll#{SHOP}"}, "sk": {"S": "engagement"}}
        resources.client("dynamodb").delete_item(TableName=resources.table_name, Key=key)  # as if an hour ago
        checkpoints.save(SHOP, replace(stuck, covered_until=stuck.covered_until - timedelta(hours=1)))
        assert main(doctor) == 1
    finally:
        local_stack.sandbox.webhooks_api(None)
        local_stack.sandbox.deny_scopes(SANDBOX_API_KEY, [])

    out = capsys.readouterr().out
    line = lines(out)["Klaviyo engagement"]
    assert line.startswith(f"✗ Klaviyo engagement: {SHOP}: poll, poll last completed "), line
    assert "(last failure: klaviyo 403 get_metrics)" in line
    assert "fix: give the shop's Klaviyo key the scopes events:read and metrics:read" in out


def test_a_terminal_without_the_stacks_custom_secret_is_warned_that_send_webhook_gets_401(
    local_stack, doctor, capsys, monkeypatch
):
    monkeypatch.setenv("EVERGREEN_LOCAL_SHOPIFY_SECRET", "what-this-terminal-was-told")

    assert main(doctor) == 0, "a warning fails nothing"

    out = capsys.readouterr().out
    check = lines(out)["Shopify webhook secret"]
    assert check.startswith("!") and "EVERGREEN_LOCAL_SHOPIFY_SECRET" in check and "401" in check
    assert "what-this-terminal-was-told" not in out and "evergreen-local-shopify-secret" not in out
