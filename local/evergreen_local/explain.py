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
from evergreen_local.aws_stack import DEFAULT_STACK
from evergreen_local.targets import TargetUnavailable, use_target


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shop", required=True, help="shop domain, e.g. my-store.myshopify.com")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the customer's email (any case)")
    who.add_argument("--customer-id", help="the Shopify customer id")
    parser.add_argument("--json", action="store_true", help="print JSON")
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


def print_human(report: dict[str, Any]) -> None:
    print(f"profile {report['profile']} at {report['evaluated_at']}")
    print(f"  segments now:    {', '.join(report['segments']) or '(none)'}")
    print(f"  segments stored: {', '.join(report['stored_segments']) or '(none)'}")
    print(f"  next transition: {report['next_transition_at'] or 'none (nothing can flip without an event)'}")
    print("  why:")
    print("    " + json.dumps(report["explanation"], indent=2, default=str).replace("\n", "\n    "))


def main(args: argparse.Namespace) -> int:
    try:
        use_target(args.aws, args.stack, args.region)
    except TargetUnavailable as error:
        print(f"error: {error}")
        return 2
    edges = Edges(Settings.from_env())
    profile = find_profile(edges, args.shop, args.email, args.customer_id)
    if profile is None:
        print("error: no such profile")
        return 1
    report = explanation(edges, profile)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_human(report)
    return 0
