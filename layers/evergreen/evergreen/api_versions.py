"""How long the pinned Shopify API version and Klaviyo revision stay supported, by their owners' published rules.

- Shopify releases a stable version each quarter (`YYYY-MM`, on the 1st of January, April, July and October)
  and supports it "for a minimum of 12 months" (shopify.dev, "About Shopify API versioning"). Past that it
  "falls forward": it serves the oldest supported version, and webhooks say which in `X-Shopify-Api-Version`.
- Klaviyo names a revision by its release date (`YYYY-MM-DD`). A revision is stable for one year, then
  deprecated for one more, and retired two years after its release (Klaviyo's "API versioning and deprecation
  policy").

Pure: dates in, dates out. The pins themselves live in `evergreen.settings`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

SHOPIFY_SUPPORT_MONTHS = 12
"""Shopify's published minimum support window for a stable version."""
KLAVIYO_STABLE_YEARS = 1
KLAVIYO_RETIRED_YEARS = 2
WARN_WITHIN_DAYS = 92
"""Warn when less than about three months of support are left."""

_SHOPIFY_VERSION = re.compile(r"(\d{4})-(01|04|07|10)")
_KLAVIYO_REVISION = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:\.pre)?")


class UnknownVersion(ValueError):
    """Not a stable Shopify version (`YYYY-01/04/07/10`) or a Klaviyo revision (`YYYY-MM-DD`)."""


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, day.day)


def shopify_release_date(version: str) -> date:
    """The day Shopify released a stable version: `2026-10` -> 2026-10-01."""
    match = _SHOPIFY_VERSION.fullmatch(version)
    if not match:
        raise UnknownVersion(f"{version!r} is not a stable Shopify API version (YYYY-01, -04, -07 or -10)")
    return date(int(match.group(1)), int(match.group(2)), 1)


def shopify_support_ends(version: str) -> date:
    """The first day Shopify may no longer support `version` (its release plus 12 months)."""
    return _add_months(shopify_release_date(version), SHOPIFY_SUPPORT_MONTHS)


@dataclass(frozen=True)
class KlaviyoWindow:
    """A Klaviyo revision's life: stable until `stable_until`, deprecated until `retired_on`."""

    revision: str
    released: date
    stable_until: date
    retired_on: date


def klaviyo_window(revision: str) -> KlaviyoWindow:
    """The published life of a Klaviyo revision: `2026-07-15` is stable until 2027-07-15, retired 2028-07-15."""
    match = _KLAVIYO_REVISION.fullmatch(revision)
    if not match:
        raise UnknownVersion(f"{revision!r} is not a Klaviyo revision (YYYY-MM-DD)")
    released = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    return KlaviyoWindow(
        revision=revision,
        released=released,
        stable_until=_add_months(released, 12 * KLAVIYO_STABLE_YEARS),
        retired_on=_add_months(released, 12 * KLAVIYO_RETIRED_YEARS),
    )


@dataclass(frozen=True)
class PinStatus:
    """Where a pin stands today: `ends` is the day support ends, `days_left` how many days remain."""

    pin: str
    ends: date
    days_left: int

    @property
    def expired(self) -> bool:
        return self.days_left <= 0

    @property
    def ending_soon(self) -> bool:
        return 0 < self.days_left <= WARN_WITHIN_DAYS


def shopify_pin_status(version: str, today: date) -> PinStatus:
    ends = shopify_support_ends(version)
    return PinStatus(pin=version, ends=ends, days_left=(ends - today).days)


def klaviyo_pin_status(revision: str, today: date) -> PinStatus:
    """Measured against the end of the stable year: a deprecated revision still works, but is due an upgrade."""
    ends = klaviyo_window(revision).stable_until
    return PinStatus(pin=revision, ends=ends, days_left=(ends - today).days)


def is_version_drift(delivered: str | None, pinned: str) -> bool:
    """A delivery stamped with a version other than the pin (none stamped is not drift: nothing to compare)."""
    return bool(delivered) and delivered != pinned
