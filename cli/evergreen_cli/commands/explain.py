"""`evergreen explain`: a profile's segments, why each holds or not, and its next transition."""

from __future__ import annotations

import argparse
import json
from typing import Any

from evergreen.domain.profile import Profile, normalise_email
from evergreen.segments import evaluate
from evergreen.service.routing import profile_for
from evergreen.settings import Settings
from evergreen.wiring import Edges
from evergreen_cli.arguments import shop_domain
from evergreen_cli.aws_stack import DEFAULT_STACK
from evergreen_cli.main import CliError, render_table
from evergreen_cli.targets import use_target


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shop", type=shop_domain, required=True, help="shop domain, e.g. my-store.myshopify.com")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the customer's email (any case)")
    who.add_argument("--customer-id", help="the Shopify customer id")
    parser.add_argument("--json", action="store_true", help="print the full explanation as JSON (for machines)")
    parser.add_argument("--aws", action="store_true", help="read the deployed stack's table instead of the local stack")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region")


def find_profile(edges: Edges, shop: str, email: str | None, customer_id: str | None) -> Profile | None:
    blank = profile_for(edges.store, shop, customer_id or None, normalise_email(email))
    return edges.store.load(shop, blank.key) if blank else None


def explanation(edges: Edges, profile: Profile) -> dict[str, Any]:
    now = edges.clock.now()
    evaluation = evaluate(profile.facts(), edges.definitions, now)
    next_at = evaluation.next_transition_at
    return {
        "profile": profile.key,
        "evaluated_at": now.isoformat(),
        "segments": sorted(evaluation.segments),
        "stored_segments": sorted(profile.membership),
        "next_transition_at": next_at.isoformat() if next_at else None,
        "definitions_hash": edges.definitions.hash,
        "explanation": evaluation.explain(),
    }


def deciding_condition(node: dict[str, Any]) -> dict[str, Any]:
    """The atom that decides a condition tree's outcome: for a held `all`, the one that flips first; for a
    failed `all`, the first that failed; for a held `any`, the first that held; under `not`, its child's."""
    op = node.get("op")
    if op == "not":
        return deciding_condition(node["condition"])
    if op not in ("all", "any"):
        return node
    children = [deciding_condition(child) for child in node["conditions"]]
    outcome = [child for child in node["conditions"] if child["held"] == node["held"]]
    decisive = [deciding_condition(child) for child in outcome] or children
    if (op == "all") == node["held"]:  # every child agrees: the first to flip decides
        flipping = [atom for atom in decisive if atom.get("flips_at")]
        if flipping:
            return min(flipping, key=lambda atom: str(atom["flips_at"]))
    return decisive[0]


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return "none" if value is None else str(value)


def condition_text(atom: dict[str, Any]) -> str:
    """`last_order_at within 30d (seen 2026-11-01T00:00:00+00:00)`."""
    return f"{atom['fact']} {atom['op']} {_shown(atom['expected'])} (seen {_shown(atom['value'])})"


def table_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for segment, why in report["explanation"].items():
        atom = deciding_condition(why["condition"])
        rows.append(
            (segment, "yes" if why["member"] else "no", condition_text(atom), _shown(atom.get("flips_at") or "-"))
        )
    return rows


def print_human(report: dict[str, Any]) -> None:
    print(f"profile {report['profile']} at {report['evaluated_at']} (definitions {report['definitions_hash']})")
    print(render_table(table_rows(report), ("segment", "member", "deciding condition", "flips at")))
    print(f"next transition: {report['next_transition_at'] or 'none (nothing can flip without an event)'}")
    if report["segments"] != report["stored_segments"]:
        print(f"stored segments differ: {', '.join(report['stored_segments']) or '(none)'} (the next sweep fixes it)")


def main(args: argparse.Namespace) -> int:
    use_target(args.aws, args.stack, args.region)
    edges = Edges(Settings.from_env())
    profile = find_profile(edges, args.shop, args.email, args.customer_id)
    if profile is None:
        who = f"email {args.email}" if args.email else f"customer id {args.customer_id}"
        raise CliError(f"no profile with {who} in shop {args.shop}: check --shop, or send it a webhook first")
    report = explanation(edges, profile)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_human(report)
    return 0
