"""`evergreen explain` and `evergreen sweep` against a running stack's resources on moto server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from evergreen.domain.events import OrderObserved
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply_order
from evergreen.settings import Settings
from evergreen.wiring import Edges
from evergreen_local.cli import main

SHOP = "cli.myshopify.com"


@pytest.fixture
def running_stack(local_resources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Edges:
    """What `evergreen run` leaves for the other commands: its functions' environment in a state file."""
    environment = local_resources.function_environment("ShopifyWebhookFunction")
    state = tmp_path / "env.json"
    state.write_text(json.dumps(environment))
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(state))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Edges(Settings.from_env(environment))


def test_explain_prints_membership_reasons_and_next_transition_as_json(running_stack, capsys):
    order = OrderObserved(
        order_id="1",
        customer_id="77",
        email="Grace@Example.com",
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
        total=Decimal("700.00"),
    )
    running_stack.writer.write_order(
        Profile(shop=SHOP, customer_id="77"), order.order_id, lambda profile, state: apply_order(profile, state, order)
    )
    capsys.readouterr()

    code = main(["explain", "--shop", SHOP, "--email", "grace@example.com", "--json"])

    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert "big_spender" in report["segments"]
    assert report["explanation"]["big_spender"]["member"] is True
    assert report["next_transition_at"] is not None


def test_explain_says_when_there_is_no_such_profile(running_stack, capsys):
    assert main(["explain", "--shop", SHOP, "--customer-id", "404"]) == 1


def test_a_dry_run_sweep_from_the_cli_reports_and_writes_nothing(running_stack, capsys):
    code = main(["sweep", "--dry-run"])

    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["dry_run"] is True
    assert report["written"] == 0
