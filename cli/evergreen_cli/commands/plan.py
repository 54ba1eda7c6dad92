"""`evergreen plan segments.yaml`: what deploying a segments file would change, before deploying it.

Read-only. It validates the file, prints its definitions hash next to the one the stack's profiles were
evaluated under, and, per segment, how many profiles would enter and exit (with a few example profile
keys), by evaluating every stored profile under the new file now and comparing with its stored
membership. A change to `klaviyo_list_id` alone keeps the hash: no profile is re-evaluated; the next
sweep moves the segment's members to the new list (service/list_moves.py), and the plan counts them.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evergreen.domain.list_moves import SegmentMove
from evergreen.domain.profile import Profile, guest_profile_key
from evergreen.segments import Definitions, evaluate, load_definitions
from evergreen.service.list_moves import moves_to
from evergreen.service.shopify_webhooks import fingerprint
from evergreen.settings import Settings
from evergreen.wiring import Edges, definitions_for
from evergreen_cli.activity import working
from evergreen_cli.aws_stack import DEFAULT_STACK
from evergreen_cli.main import render_table
from evergreen_cli.targets import use_target

EXAMPLES_SHOWN = 3
SCAN_SEGMENTS = 4


def shown_key(profile: Profile) -> str:
    """The profile key, with a guest's email replaced by its fingerprint."""
    if profile.customer_id is not None:
        return profile.key
    return guest_profile_key(fingerprint(profile.email_normalized))


@dataclass
class Plan:
    definitions_hash: str
    deployed_hash: str | None
    current_hash: str
    profiles: int = 0
    entering: Counter[str] = field(default_factory=Counter)
    exiting: Counter[str] = field(default_factory=Counter)
    examples_in: dict[str, list[str]] = field(default_factory=dict)
    examples_out: dict[str, list[str]] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    lists_recorded: bool = True
    """Whether a sweep recorded the Klaviyo lists yet; if not, the first one records the deployed file's."""
    list_moves: dict[str, SegmentMove] = field(default_factory=dict)
    list_members: Counter[str] = field(default_factory=Counter)
    """Members each moved segment would have (under the new file): how many the list move moves."""
    removed_lists: dict[str, str] = field(default_factory=dict)
    """A removed segment's Klaviyo list, which keeps its members."""

    @property
    def reevaluates(self) -> bool:
        """Whether deploying the file makes the next sweep re-evaluate every profile."""
        return self.definitions_hash != (self.deployed_hash or self.current_hash)

    def as_dict(self) -> dict[str, Any]:
        segments = sorted(set(self.entering) | set(self.exiting))
        return {
            "definitions_hash": self.definitions_hash,
            "deployed_hash": self.deployed_hash,
            "full_reevaluation": self.reevaluates,
            "profiles": self.profiles,
            "segments_added": self.added,
            "segments_removed": self.removed,
            "klaviyo_lists_recorded": self.lists_recorded,
            "klaviyo_list_moves": {
                name: {**move.as_dict(), "members": self.list_members[name]} for name, move in self.list_moves.items()
            },
            "segments": {
                name: {
                    "enter": self.entering[name],
                    "exit": self.exiting[name],
                    "examples_entering": self.examples_in.get(name, []),
                    "examples_exiting": self.examples_out.get(name, []),
                }
                for name in segments
            },
        }


def _example(examples: dict[str, list[str]], segment: str, key: str) -> None:
    shown = examples.setdefault(segment, [])
    if len(shown) < EXAMPLES_SHOWN:
        shown.append(key)


def plan(
    edges: Edges, new: Definitions, current: Definitions, progress: Callable[[int], None] = lambda read: None
) -> Plan:
    """Evaluate every stored profile under `new` at the edges' clock; reads only. `progress(read)` after
    each page."""
    store, now = edges.store, edges.clock.now()
    result = Plan(new.hash, store.swept_definitions_hash(), current.hash)
    result.added = sorted(set(new.names) - set(current.names))
    result.removed = sorted(set(current.names) - set(new.names))
    filled = edges.list_moves.filled_list_ids()
    result.lists_recorded = filled is not None
    if filled is not None:
        result.list_moves = moves_to(new.klaviyo_list_ids, new.names, filled, edges.list_moves.progress())
        result.removed_lists = {name: filled[name] for name in result.removed if name in filled}
    for segment in range(SCAN_SEGMENTS):
        start = None
        while True:
            page = store.scan(segment, SCAN_SEGMENTS, start)
            for profile in page.items:
                result.profiles += 1
                target = set() if profile.deleted else set(evaluate(profile.facts(), new, now).segments)
                stored = set(profile.membership)
                result.list_members.update(target & result.list_moves.keys())
                for name in sorted(target - stored):
                    result.entering[name] += 1
                    _example(result.examples_in, name, shown_key(profile))
                for name in sorted(stored - target):
                    result.exiting[name] += 1
                    _example(result.examples_out, name, shown_key(profile))
            progress(result.profiles)
            start = page.next_key
            if not start:
                break
    return result


def print_human(result: Plan, source: str) -> None:
    evaluated_under = result.deployed_hash or "none yet"
    print(f"{source}: definitions {result.definitions_hash} (profiles evaluated under {evaluated_under})")
    if result.reevaluates:
        print("deploying it makes the next sweep re-evaluate every profile once")
    else:
        print("same membership rules: deploying it re-evaluates nobody")
    for name in result.added:
        print(f"new segment: {name}")
    for name in result.removed:
        kept = f"; Klaviyo list {result.removed_lists[name]} keeps them" if name in result.removed_lists else ""
        print(f"removed segment: {name} (its members exit{kept})")
    if not result.lists_recorded:
        print("no Klaviyo lists recorded yet: the first sweep records the deployed file's lists and moves nobody")
    for name, move in result.list_moves.items():
        print(moving(name, move, result.list_members[name]))
    rows = [
        (
            name,
            str(result.entering[name]),
            str(result.exiting[name]),
            ", ".join(result.examples_in.get(name, []) + result.examples_out.get(name, [])),
        )
        for name in sorted(set(result.entering) | set(result.exiting))
    ]
    if rows:
        print(render_table(rows, ("segment", "enter", "exit", "for example")))
    print(f"{result.profiles} profile(s) read; nothing written")


def moving(segment: str, move: SegmentMove, members: int) -> str:
    """What the list move after the deploy does with a segment's members, in words."""
    old = ", ".join(move.from_lists)
    steps = ([f"join {move.to_list}"] if move.to_list else []) + ([f"leave {old}"] if old else [])
    lists, who = f"{old or '(none)'} -> {move.to_list or '(none)'}", " and ".join(steps)
    return f"{segment}: Klaviyo list {lists}: after deploying, a sweep moves {members} member(s), who {who}"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the segments file to preview, e.g. segments.yaml")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--aws", action="store_true", help="read the deployed stack's table (default: the local stack)")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region")


def main(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        raise FileNotFoundError(2, "No such file", str(args.file))
    new = load_definitions(args.file)
    use_target(args.aws, args.stack, args.region)
    edges = Edges(Settings.from_env())
    with working("reading the stack's profiles", json_output=args.json) as activity:
        result = plan(
            edges, new, definitions_for(edges.settings), lambda read: activity.update(f"read {read} profiles")
        )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print_human(result, str(args.file))
    return 0
