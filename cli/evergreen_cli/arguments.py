"""Argument types shared by the commands: a bad value is refused by argparse in one line, before anything runs."""

from __future__ import annotations

import argparse

from evergreen.domain.shops import shop_domain_problem


def shop_domain(value: str) -> str:
    """--shop: a shop's `<name>.myshopify.com` domain; anything else would import or register under a wrong key."""
    problem = shop_domain_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return value
