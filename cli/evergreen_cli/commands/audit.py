"""`evergreen audit`: does Klaviyo hold what the table says? The `evergreen_segments` property and the mapped lists
of every profile (or a random sample), with `--repair` sending the drifted ones again through the sync path."""

from __future__ import annotations

import argparse
import json

from evergreen.klaviyo.holdings import KlaviyoHoldings
from evergreen.service.audit import Audit, AuditReport
from evergreen.settings import Settings
from evergreen.storage.shop_profiles import DynamoShopProfiles
from evergreen.wiring import Edges
from evergreen_cli.arguments import shop_domain
from evergreen_cli.aws_stack import DEFAULT_STACK
from evergreen_cli.main import CliError, render_table
from evergreen_cli.targets import use_target

SHOWN_DRIFT = 50


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shop", type=shop_domain, required=True, help="shop domain, e.g. my-store.myshopify.com")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--sample", type=int, metavar="N", help="audit N profiles drawn at random (default 200)")
    scope.add_argument("--all", action="store_true", help="audit every profile of the shop")
    parser.add_argument("--repair", action="store_true", help="send drifted profiles again through the sync path")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (for machines)")
    parser.add_argument("--aws", action="store_true", help="audit the deployed stack instead of the local stack")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region")


def build_audit(edges: Edges, shop: str) -> Audit:
    client = edges.klaviyo_lookup(shop)
    if client is None:
        raise CliError(f"no Klaviyo account for shop {shop}: store its API key in the Klaviyo secret first")
    profiles = DynamoShopProfiles(edges.dynamodb, edges.settings.profiles_table)
    lists = edges.definitions.klaviyo_list_ids
    return Audit(profiles, KlaviyoHoldings(client), lists, edges.store, edges.publisher)


def print_human(report: AuditReport, repair: bool) -> None:
    print(f"checked {report.checked} profiles ({report.in_flight} skipped: never synced or a change in flight)")
    if report.clean:
        print("no drift: Klaviyo holds what the table says")
        return
    rows = [(drift.profile_key, "; ".join(drift.problems)) for drift in report.drift[:SHOWN_DRIFT]]
    print(render_table(rows, ("profile", "drift")))
    more = len(report.drift) - SHOWN_DRIFT
    if more > 0:
        print(f"... and {more} more")
    if repair:
        print(f"{report.repaired} sent again through the sync path; run the audit again once the queue is drained")
    else:
        print(f"{len(report.drift)} drifted: `--repair` sends them again through the sync path")


def main(args: argparse.Namespace) -> int:
    if args.sample is not None and args.sample < 1:
        raise CliError("--sample takes a number of profiles, 1 or more")
    use_target(args.aws, args.stack, args.region)
    edges = Edges(Settings.from_env())
    sample = None if args.all else (args.sample or 200)
    report = build_audit(edges, args.shop).run(args.shop, sample, edges.clock.now(), repair=args.repair)
    if args.json:
        print(
            json.dumps(
                {
                    "checked": report.checked,
                    "in_flight": report.in_flight,
                    "repaired": report.repaired,
                    "drift": [{"profile": d.profile_key, "problems": list(d.problems)} for d in report.drift],
                },
                indent=2,
            )
        )
    else:
        print_human(report, args.repair)
    return 0 if report.clean or args.repair else 1
