"""The seeded local store, as the README walks it: `seed-shop`, `backfill`, then `report --png` draws its chart and
`audit` finds Klaviyo (the sandbox) holding what the table says, all through the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from evergreen_cli.main import main

pytestmark = pytest.mark.e2e

SHOP = "e2e-report.myshopify.com"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def on_the_local_stack(local_stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The command line pointed at this stack through its state file, as `evergreen run` leaves it."""
    environment = {**local_stack.runtime.environment(), "SHOPIFY_ADMIN_BASE_URL": local_stack.shopify_sandbox.url}
    state = tmp_path / "env.json"
    state.write_text(json.dumps(environment))
    monkeypatch.setenv("EVERGREEN_LOCAL_STATE", str(state))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SEGMENTS_FILE", raising=False)
    yield


def test_the_seeded_local_store_reports_a_chart_and_audits_clean(
    on_the_local_stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed-shop", "--customers", "20", "--seed", "4", "--shop", SHOP]) == 0
    assert main(["backfill", "--shop", SHOP, "--no-progress"]) == 0
    capsys.readouterr()
    chart = tmp_path / "report.png"

    assert main(["report", "--shop", SHOP, "--png", str(chart)]) == 0
    printed = capsys.readouterr().out
    assert "segment" in printed and "members" in printed and f"chart written to {chart}" in printed
    assert chart.read_bytes()[:8] == PNG_MAGIC

    assert main(["report", "--shop", SHOP, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert sum(segment["members"] for segment in figures) > 0

    assert main(["audit", "--shop", SHOP, "--all"]) == 0
    assert "no drift" in capsys.readouterr().out
