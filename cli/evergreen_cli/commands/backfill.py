"""`evergreen backfill`: import a shop's Shopify history (and its segments) from this terminal.

Against the running local stack it reads the Shopify Admin sandbox; with --aws it reads the real shop
with the Admin API token from Secrets Manager and writes the deployed stack's table. Interrupted or
failed runs resume from their checkpoint when run again with the same --shop and --since.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from evergreen.backfill_wiring import (
    MissingAdminToken,
    admin_token,
    build_backfill,
    build_engagement_history,
    klaviyo_sender,
)
from evergreen.klaviyo.history import DEFAULT_WINDOW_DAYS
from evergreen.service.backfill import MembershipSyncFailed
from evergreen.service.backfill_model import BackfillCounts
from evergreen.settings import Settings
from evergreen.shopify.admin import REQUIRED_SCOPES, ShopifyAdmin
from evergreen.shopify.bulk import AdminError
from evergreen.wiring import Edges
from evergreen_cli.arguments import shop_domain
from evergreen_cli.aws_stack import DEFAULT_STACK, stack_outputs
from evergreen_cli.sandboxes.shopify_admin import local_admin_token
from evergreen_cli.targets import TargetUnavailable, use_target

"""The token sent to the local Shopify sandbox (EVERGREEN_LOCAL_SHOPIFY_ADMIN_TOKEN overrides it)."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shop", type=shop_domain, required=True, help="shop domain, e.g. my-store.myshopify.com")
    parser.add_argument(
        "--since",
        type=_date,
        help="only customers, orders and abandoned checkouts updated on or after this date (YYYY-MM-DD)",
    )
    parser.add_argument("--aws", action="store_true", help="backfill into the deployed stack instead of the local one")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument(
        "--entered-events",
        action="store_true",
        help='also send "Entered segment" events for backfilled members (off: flows would greet everyone at once)',
    )
    parser.add_argument(
        "--checkpoint-every", type=int, default=2_000, metavar="N", help="records between checkpoints (default 2000)"
    )
    parser.add_argument(
        "--engagement-days",
        type=int,
        default=DEFAULT_WINDOW_DAYS,
        metavar="DAYS",
        help=f"read Klaviyo opens, clicks, bounces, spam and unsubscribes of the last DAYS days "
        f"(default {DEFAULT_WINDOW_DAYS}; 0 skips it)",
    )
    parser.add_argument("--workers", type=int, default=8, metavar="N", help="records applied at a time (default 8)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")


def _date(value: str) -> str:
    try:
        parsed = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a date like 2024-01-31") from None
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


class ProgressBar:
    """A rich progress bar per phase: objects read of the file's total, applied, unchanged, skipped, rate, ETA."""

    def __init__(self, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "applied {task.fields[applied]} · unchanged {task.fields[unchanged]} · skipped {task.fields[skipped]}"
            ),
            TextColumn("{task.fields[rate]:>8.0f}/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=not enabled,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, tuple[float, int]] = {}

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def update(self, phase: str, counts: BackfillCounts, total: int | None) -> None:
        if phase not in self._tasks:
            self._tasks[phase] = self._progress.add_task(
                phase, total=total, applied=0, unchanged=0, skipped=0, rate=0.0
            )
            self._started[phase] = (_now(), counts.read)
        started_at, read_before = self._started[phase]
        elapsed = max(_now() - started_at, 1e-6)
        self._progress.update(
            self._tasks[phase],
            completed=counts.read - read_before,
            total=total,
            applied=counts.applied,
            unchanged=counts.unchanged,
            skipped=counts.skipped,
            rate=(counts.read - read_before) / elapsed,
        )


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _admin(edges: Edges, shop: str, aws: bool) -> ShopifyAdmin:
    if aws:
        return ShopifyAdmin(shop, admin_token(edges, shop))
    base_url = edges.settings.shopify_admin_base_url
    if not base_url:
        raise TargetUnavailable("the local stack has no Shopify sandbox: restart it with `make run`")
    token = local_admin_token()
    return ShopifyAdmin(shop, token, base_url=base_url)


def run_backfill(args: argparse.Namespace) -> dict[str, Any]:
    environment = use_target(args.aws, args.stack, args.region)
    if args.aws:  # the deployed secrets, by the ARNs the stack outputs
        outputs = stack_outputs(args.stack, args.region)
        secrets = {"SHOPIFY_ADMIN_SECRETS_ID": "ShopifyAdminTokensArn", "KLAVIYO_SECRETS_ID": "KlaviyoSecretsArn"}
        environment |= {name: outputs[output] for name, output in secrets.items() if output in outputs}
    edges = Edges(Settings.from_env({**os.environ, **environment}))
    with _admin(edges, args.shop, args.aws) as admin, ProgressBar(not args.no_progress) as bar:
        sender = klaviyo_sender(edges, args.shop)
        backfill = build_backfill(
            edges,
            admin,
            sender,
            fire_segment_events=args.entered_events,
            checkpoint_every=args.checkpoint_every,
            poll_every_s=2.0 if args.aws else 0.2,
            on_progress=bar.update,
            workers=args.workers,
        )
        report = backfill.run(args.shop, args.since)
        engagement: dict[str, Any] = {}
        if sender is not None and report.finished and args.engagement_days > 0:
            history = build_engagement_history(
                edges, sender, window_days=args.engagement_days, fire_segment_events=args.entered_events
            ).run(args.shop)
            engagement = {"engagement_events": history.events, "engagement_applied": history.applied}
    counts = report.counts
    return {
        **engagement,
        "shop": args.shop,
        "finished": report.finished,
        **counts.model_dump(),
        "klaviyo": "bulk jobs" if sender is not None else "per-change queue (no Klaviyo account configured)",
        "entered_segment_events": bool(args.entered_events),
    }


def main(args: argparse.Namespace) -> int:
    try:
        summary = run_backfill(args)
    except TargetUnavailable as error:
        print(f"evergreen backfill: {error}", file=sys.stderr)
        return 2
    except (AdminError, MissingAdminToken, MembershipSyncFailed) as error:
        print(f"evergreen backfill: {error}", file=sys.stderr)
        if isinstance(error, MissingAdminToken):
            print(f"  the Admin API token needs scopes: {', '.join(REQUIRED_SCOPES)}", file=sys.stderr)
        print("  run the same command again to resume from the last checkpoint", file=sys.stderr)
        return int(getattr(error, "exit_code", 1))
    width = max(len(key) for key in summary)
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")
    return 0
