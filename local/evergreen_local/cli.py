"""The `evergreen` command line: one sub-command per module, each with configure() and main()."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("evergreen_local.stack", "start the local stack (moto, HTTP API, sync poller, sweep timer, sandbox)"),
    "send-webhook": ("evergreen_local.send_webhook", "sign a payload and POST it as a Shopify or Klaviyo webhook"),
    "explain": ("evergreen_local.explain", "show a profile's segments, why, and its next transition"),
    "sweep": ("evergreen_local.sweep", "run the staleness sweep locally or invoke the deployed one"),
    "console-events": ("evergreen_local.console_events", "publish events/ as shareable Lambda console test events"),
    "backfill": ("evergreen_local.backfill_cli", "import a shop's Shopify history and its segments (resumable)"),
    "seed-shop": ("evergreen_local.seed_shop", "fill the local Shopify sandbox with a synthetic store"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evergreen", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.configure(sub)
        sub.set_defaults(handler=module.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
