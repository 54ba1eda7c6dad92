"""`evergreen explain` and `evergreen sweep` against a running stack's resources on moto server."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from evergreen.domain.events import OrderObserved
from evergreen.domain.profile import Profile
from evergreen.domain.reducers import apply_order
from evergreen.settings import Settings
from evergreen.wiring import Edges
from evergreen_cli.main import main

SHOP = "cli.myshopify.com"


@pytest.fixture
def running_stack(stack_environment: dict[str, str]) -> Edges:
    """What `evergreen run` leaves for the other commands, and the edges its functions use."""
    return Edges(Settings.from_env(stack_environment))


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
    code = main(["sweep", "--dry-run", "--json"])

    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == 0
    assert report["dry_run"] is True
    assert report["written"] == 0
    assert err == "", "a script reading the report sees nothing else"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_at_a_terminal_the_sweep_says_it_is_sweeping_then_erases_that_and_prints_the_same_report(
    running_stack, monkeypatch
):
    monkeypatch.setenv("TERM", "xterm-256color")
    stdout, stderr = Terminal(), Terminal()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)

    assert main(["sweep", "--dry-run", "--json"]) == 0

    assert "sweeping the local stack" in stderr.getvalue()
    assert stderr.getvalue().endswith("\x1b[2K"), "erased before the report is printed"
    assert json.loads(stdout.getvalue())["dry_run"] is True


def test_a_segment_the_definitions_lack_is_named_with_the_ones_they_have(running_stack, capsys):
    assert main(["sweep", "--dry-run", "--segment", "lapsd"]) == 2

    err = capsys.readouterr().err
    assert "no segment lapsd" in err and "lapsed" in err and "Traceback" not in err
