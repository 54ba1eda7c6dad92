"""A shop's identity: its permanent `<name>.myshopify.com` domain, the key of every profile (never a custom domain)."""

from __future__ import annotations

import re

SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]{0,99}\.myshopify\.com")
"""A shop's myshopify.com domain: lower case, its name bounded (it is part of every key)."""


def is_shop_domain(value: str) -> bool:
    """Whether `value` is a shop's `<name>.myshopify.com` domain."""
    return SHOP_DOMAIN.fullmatch(value) is not None


def shop_domain_problem(value: str) -> str | None:
    """Why `value` is not a shop domain, with the one it likely meant; None when it is one."""
    if is_shop_domain(value):
        return None
    cleaned = value.strip().lower().removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if not cleaned.endswith(".myshopify.com"):
        cleaned = f"{cleaned.split('.', 1)[0]}.myshopify.com"
    meant = f": did you mean {cleaned}?" if is_shop_domain(cleaned) else ""
    return f"{value!r} is not a shop domain (<name>.myshopify.com, the shop's permanent domain){meant}"
