"""The pins' support windows follow their owners' published rules, and the pins live in one place."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from evergreen.api_versions import (
    UnknownVersion,
    is_version_drift,
    klaviyo_pin_status,
    klaviyo_window,
    shopify_pin_status,
    shopify_support_ends,
)
from evergreen.settings import KLAVIYO_REVISION, SHOPIFY_API_VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_a_shopify_version_is_supported_for_twelve_months_from_its_release():
    assert shopify_support_ends("2026-10") == date(2027, 10, 1)
    assert shopify_support_ends("2025-10") == date(2026, 10, 1)


def test_a_klaviyo_revision_is_stable_one_year_and_retired_after_two():
    window = klaviyo_window("2026-07-15")
    assert (window.stable_until, window.retired_on) == (date(2027, 7, 15), date(2028, 7, 15))


@pytest.mark.parametrize("version", ["2026-11", "2026-10-15", "latest", "unstable", ""])
def test_only_stable_quarterly_versions_are_shopify_versions(version):
    with pytest.raises(UnknownVersion):
        shopify_support_ends(version)


def test_the_pin_warns_in_its_last_three_months_and_expires_on_the_day_support_ends():
    assert not shopify_pin_status("2026-10", date(2027, 6, 30)).ending_soon
    assert shopify_pin_status("2026-10", date(2027, 7, 15)).ending_soon
    assert shopify_pin_status("2026-10", date(2027, 10, 1)).expired
    assert klaviyo_pin_status("2026-07-15", date(2027, 5, 1)).ending_soon


def test_a_delivery_at_another_version_is_drift_and_one_without_a_version_is_not():
    assert is_version_drift("2026-01", "2026-10")
    assert not is_version_drift("2026-10", "2026-10")
    assert not is_version_drift(None, "2026-10")


def test_the_pins_are_a_stable_shopify_version_and_a_klaviyo_revision():
    assert shopify_support_ends(SHOPIFY_API_VERSION) > date(2027, 1, 1)
    assert klaviyo_window(KLAVIYO_REVISION).retired_on > date(2027, 1, 1)


def test_the_shopify_version_is_written_in_one_place():
    """Code names the pin by its constant; only settings.py spells it out (docs and generated events aside)."""
    spelled = re.compile(re.escape(f'"{SHOPIFY_API_VERSION}"'))
    places = [
        path.relative_to(ROOT).as_posix()
        for folder in ("layers/evergreen/evergreen", "cli/evergreen_cli", "functions")
        for path in (ROOT / folder).rglob("*.py")
        if spelled.search(path.read_text())
    ]
    assert places == ["layers/evergreen/evergreen/settings.py"]
