"""`evergreen register-webhooks --klaviyo --shop S`: the Klaviyo system webhook for the stack (not yet)."""

from __future__ import annotations

import argparse

from evergreen_local.cli import CliError


def register_klaviyo(args: argparse.Namespace) -> int:
    raise CliError("--klaviyo is not available yet: create the webhook in Klaviyo's UI (README)")
