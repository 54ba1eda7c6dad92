"""`evergreen backfill`: import a shop's Shopify history (and its segments) from this terminal.

Against the running local stack it reads the Shopify Admin sandbox; with --aws it reads the real shop
with the Admin API token from Secrets Manager and writes the deployed stack's table. Interrupted or
failed runs resume from their checkpoint when run again with the same --shop and --since.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict, astuple, dataclass
from datetime import UTC, datetime

from rich.console import Console
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
from evergreen.service.backfill_model import ALL_ORDERS_SCOPE, RECENT_ORDERS_DAYS, BackfillCounts
from evergreen.service.backfill_sync import BulkSyncReport
from evergreen.service.engagement_history import HistoryReport
from evergreen.settings import Settings
from evergreen.shopify.admin import REQUIRED_SCOPES, ShopifyAdmin
from evergreen.shopify.bulk import AdminError, ShopNotFound
from evergreen.storage.backfill_progress import DynamoBackfillProgress
from evergreen.wiring import Edges
from evergreen_cli.activity import drawn
from evergreen_cli.arguments import shop_domain
from evergreen_cli.aws_stack import DEFAULT_STACK, stack_outputs
from evergreen_cli.main import render_table
from evergreen_cli.sandboxes.shopify_admin import local_admin_token
from evergreen_cli.targets import TargetUnavailable, use_target

ALL_ORDERS = "all orders"

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


ENGAGEMENT = "engagement"
"""The phase after the Shopify ones: the Klaviyo engagement history (opens, clicks, bounces, ...)."""
PHASE_NAMES = {
    "customers": "customers",
    "orders": "orders",
    "abandonedCheckouts": "abandoned checkouts",
    ENGAGEMENT: "Klaviyo engagement",
}


@dataclass
class PhaseCounts:
    """One phase's records in this run: applied, unchanged (already reflected) or skipped."""

    records: int = 0
    applied: int = 0
    unchanged: int = 0
    skipped: int = 0


class ProgressBars:
    """A bar per phase on stderr, drawn only at a terminal: the phase's objects read of its file's total, and its
    own applied / unchanged / skipped. Every phase's bar ends full when the backfill finishes."""

    def __init__(self, drawn: bool, start: BackfillCounts) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "applied {task.fields[applied]} · unchanged {task.fields[unchanged]} · skipped {task.fields[skipped]}"
            ),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            disable=not drawn,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._last = start.model_copy()
        self._phase_start: dict[str, BackfillCounts] = {}
        self.phases: dict[str, PhaseCounts] = {}
        """Each phase's counts in this run, in the order the phases ran."""

    def __enter__(self) -> ProgressBars:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def _task(self, phase: str, total: int | None) -> TaskID:
        if phase not in self._tasks:
            fields = asdict(PhaseCounts())
            self._tasks[phase] = self._progress.add_task(PHASE_NAMES.get(phase, phase), total=total, **fields)
        return self._tasks[phase]

    def update(self, phase: str, counts: BackfillCounts, total: int | None) -> None:
        """The backfill's callback after each batch: `counts` are the run's totals over every phase so far."""
        start = self._phase_start.setdefault(phase, self._last)
        mine = PhaseCounts(
            records=counts.records - start.records,
            applied=counts.applied - start.applied,
            unchanged=counts.unchanged - start.unchanged,
            skipped=counts.skipped - start.skipped,
        )
        self.phases[phase] = mine
        self._progress.update(self._task(phase, total), completed=counts.read - start.read, total=total, **asdict(mine))
        self._last = counts.model_copy()

    def engagement(self, report: HistoryReport) -> None:
        """The engagement history's callback after each page of Klaviyo events (their number is not known ahead)."""
        # an older event of a profile already seen (newest first) changes nothing, as does one it already reflects
        mine = PhaseCounts(
            report.events, report.applied, report.events - report.applied - report.skipped, report.skipped
        )
        self.phases[ENGAGEMENT] = mine
        self._progress.update(self._task(ENGAGEMENT, None), completed=report.events, **asdict(mine))

    def finished(self) -> None:
        """Every phase is done: each bar full (a resumed phase read part of its file in an earlier run)."""
        for task in self._progress.tasks:
            total = task.total if task.total is not None else task.completed
            self._progress.update(task.id, total=total, completed=total)


@dataclass
class BackfillSummary:
    """What a run did, phase by phase, and what Klaviyo received from it."""

    shop: str
    finished: bool
    phases: dict[str, PhaseCounts]
    sync: list[BulkSyncReport] | None
    """The bulk jobs' reports; None when changes went through the per-change queue (no Klaviyo account)."""
    engagement_reads: int = 0
    entered_segment_events: bool = False
    orders_read_from: str = ALL_ORDERS
    """The oldest order date Shopify served (`all orders` with read_all_orders)."""

    def render(self) -> str:
        rows = [
            [PHASE_NAMES.get(phase, phase), *(str(value) for value in astuple(counts))]
            for phase, counts in self.phases.items()
        ]
        lines = [f"backfill of {self.shop}: {'finished' if self.finished else 'stopped (run it again to resume)'}"]
        if rows:
            lines.append(render_table(rows, ["phase", "records", "applied", "unchanged", "skipped"]))
        lines.append(f"orders read from: {self.orders_read_from}")
        lines.append(self._klaviyo_line())
        if not self.entered_segment_events:
            lines.append('"Entered segment" events: not sent (--entered-events sends them)')
        return "\n".join(lines)

    def _klaviyo_line(self) -> str:
        if self.sync is None:
            return "Klaviyo: changes go through the per-change queue (no Klaviyo account configured)"
        jobs = sum(report.bulk_profile_jobs for report in self.sync)
        entries = sum(report.profiles for report in self.sync)
        distinct = len(set().union(*(report.profile_keys for report in self.sync)))
        refused = sum(report.refused for report in self.sync)
        removals = sum(report.list_removals for report in self.sync)
        event_jobs = sum(report.bulk_event_jobs for report in self.sync)
        line = (
            f"Klaviyo imported {entries} profile entries for {distinct} distinct profiles in {jobs} bulk import "
            f"jobs ({refused} refused, left to the per-change path); {removals} list removals; {event_jobs} event jobs"
        )
        return line + (f"; {self.engagement_reads} reads of its engagement history" if self.engagement_reads else "")


def _starting_counts(edges: Edges, shop: str, since: str | None) -> BackfillCounts:
    """The counts the run resumes from (its checkpoint's), or zero for a new run."""
    progress = DynamoBackfillProgress(edges.dynamodb, edges.settings.profiles_table).load(shop)
    if progress is None or progress.phase == "done" or progress.since != since:
        return BackfillCounts()
    return progress.counts


def _admin(edges: Edges, shop: str, aws: bool) -> ShopifyAdmin:
    if aws:
        return ShopifyAdmin(shop, admin_token(edges, shop))
    base_url = edges.settings.shopify_admin_base_url
    if not base_url:
        raise TargetUnavailable("the local stack has no Shopify sandbox: restart it with `make run`")
    token = local_admin_token()
    return ShopifyAdmin(shop, token, base_url=base_url)


def run_backfill(args: argparse.Namespace) -> BackfillSummary:
    environment = use_target(args.aws, args.stack, args.region)
    if args.aws:  # the deployed secrets, by the ARNs the stack outputs
        outputs = stack_outputs(args.stack, args.region)
        secrets = {"SHOPIFY_ADMIN_SECRETS_ID": "ShopifyAdminTokensArn", "KLAVIYO_SECRETS_ID": "KlaviyoSecretsArn"}
        environment |= {name: outputs[output] for name, output in secrets.items() if output in outputs}
    edges = Edges(Settings.from_env({**os.environ, **environment}))
    bars = ProgressBars(drawn() and not args.no_progress, _starting_counts(edges, args.shop, args.since))
    with _admin(edges, args.shop, args.aws) as admin, bars:
        sender = klaviyo_sender(edges, args.shop)
        backfill = build_backfill(
            edges,
            admin,
            sender,
            fire_segment_events=args.entered_events,
            checkpoint_every=args.checkpoint_every,
            poll_every_s=2.0 if args.aws else 0.2,
            on_progress=bars.update,
            workers=args.workers,
        )
        report = backfill.run(args.shop, args.since)
        sync = list(report.sync) if sender is not None else None
        reads = 0
        if sender is not None and report.finished and args.engagement_days > 0:
            history = build_engagement_history(
                edges,
                sender,
                window_days=args.engagement_days,
                fire_segment_events=args.entered_events,
                on_page=bars.engagement,
            ).run(args.shop)
            bars.engagement(history)
            reads = history.requests
            if sync is not None and history.sync is not None:
                sync.append(history.sync)
        if report.finished:
            bars.finished()
    orders_from = report.orders_from.date().isoformat() if report.orders_from else ALL_ORDERS
    return BackfillSummary(
        args.shop, report.finished, bars.phases, sync, reads, bool(args.entered_events), orders_read_from=orders_from
    )


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
        if not isinstance(error, ShopNotFound):
            print("  run the same command again to resume from the last checkpoint", file=sys.stderr)
        return int(getattr(error, "exit_code", 1))
    print(summary.render())
    if summary.orders_read_from != ALL_ORDERS:
        print(
            f"evergreen backfill: the token lacks {ALL_ORDERS_SCOPE}, so Shopify served only the last "
            f"{RECENT_ORDERS_DAYS} days of orders: orders placed before {summary.orders_read_from} were not read, "
            "and lapsed, at_risk and lifetime totals miss them. Grant read_all_orders, store the new token and run "
            "the backfill again.",
            file=sys.stderr,
        )
    return 0
