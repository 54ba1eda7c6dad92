"""`evergreen report`: how each segment is doing: members now, entries and exits per day, engagement, spend.

Every figure comes from the running totals sync keeps (storage/segment_counts.py), never from a scan of the
profiles. With `--png FILE` the same figures are drawn as one chart (matplotlib, a development dependency).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from evergreen.domain.segment_counts import SegmentDay, SegmentTotals
from evergreen.segments.definitions import parse_duration
from evergreen.settings import Settings
from evergreen.wiring import Edges
from evergreen_cli.arguments import shop_domain
from evergreen_cli.aws_stack import DEFAULT_STACK
from evergreen_cli.main import CliError, render_table
from evergreen_cli.targets import use_target


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shop", type=shop_domain, required=True, help="shop domain, e.g. my-store.myshopify.com")
    parser.add_argument(
        "--since", default="30d", help="how far back entries and exits go, e.g. 30d or 2w (default 30d)"
    )
    parser.add_argument("--png", metavar="FILE", help="also draw the figures as a chart into FILE (a .png)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (for machines)")
    parser.add_argument("--aws", action="store_true", help="read the deployed stack's table instead of the local stack")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region")


@dataclass(frozen=True)
class SegmentReport:
    segment: str
    totals: SegmentTotals
    days: list[SegmentDay]

    @property
    def entered(self) -> int:
        return sum(day.entered for day in self.days)

    @property
    def exited(self) -> int:
        return sum(day.exited for day in self.days)

    def as_json(self) -> dict[str, Any]:
        average = self.totals.average_net_spent
        return {
            "segment": self.segment,
            "members": self.totals.members,
            "entered": self.entered,
            "exited": self.exited,
            "engaged_share": self.totals.engaged_share,
            "average_net_spent": None if average is None else str(average),
            "days": [{"day": d.day.date().isoformat(), "entered": d.entered, "exited": d.exited} for d in self.days],
        }


def segment_reports(edges: Edges, shop: str, since: date) -> list[SegmentReport]:
    """One report per segment of the definitions, in their order (a segment nobody entered reports zeros)."""
    counts = edges.store.segment_counts
    totals = counts.totals(shop)
    return [
        SegmentReport(name, totals.get(name, SegmentTotals()), counts.days(shop, name, since))
        for name in edges.definitions.names
    ]


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def print_human(reports: list[SegmentReport], since: date) -> None:
    rows = [
        (
            report.segment,
            str(report.totals.members),
            str(report.entered),
            str(report.exited),
            _percent(report.totals.engaged_share),
            str(report.totals.average_net_spent or "-"),
        )
        for report in reports
    ]
    print(f"segments since {since.isoformat()} (entries and exits counted as they reached Klaviyo)")
    print(render_table(rows, ("segment", "members", "entered", "exited", "engaged", "avg net spent")))
    daily = [
        (day.day.date().isoformat(), report.segment, f"+{day.entered}", f"-{day.exited}")
        for report in reports
        for day in report.days
    ]
    if daily:
        print()
        print(render_table(sorted(daily), ("day", "segment", "entered", "exited")))


def draw_png(reports: list[SegmentReport], since: date, path: Path, shop: str) -> None:
    """Four panels: members now, entries and exits per day, the share engaged, the average net spent."""
    try:
        import matplotlib  # noqa: PLC0415 (a development dependency, needed only with --png)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise CliError("--png needs matplotlib: run `uv sync` (it is a development dependency)") from None
    names = [report.segment for report in reports]
    figure, ((members, flow), (engaged, spend)) = plt.subplots(2, 2, figsize=(13, 8), constrained_layout=True)
    figure.suptitle(f"How each segment is doing: {shop}, since {since.isoformat()}", fontsize=14)
    members.barh(names, [report.totals.members for report in reports], color="#2e7d32")
    members.invert_yaxis()
    members.set_title("Members now")
    palette = plt.get_cmap("tab20")
    colours = [palette(index % 20) for index in range(len(reports))]
    above: dict[Any, int] = {}
    below: dict[Any, int] = {}
    for index, report in enumerate(reports):
        if not report.days:
            continue
        days = [day.day for day in report.days]
        entered = [day.entered for day in report.days]
        exited = [-day.exited for day in report.days]
        colour = colours[index % len(colours)]
        flow.bar(days, entered, bottom=[above.get(d, 0) for d in days], color=colour, label=report.segment)
        flow.bar(days, exited, bottom=[below.get(d, 0) for d in days], color=colour, alpha=0.55)
        for day, up, down in zip(days, entered, exited, strict=True):
            above[day] = above.get(day, 0) + up
            below[day] = below.get(day, 0) + down
    flow.axhline(0, color="#555555", linewidth=0.8)
    flow.set_yscale("symlog", linthresh=10)
    flow.set_title("Entries (up) and exits (down) per day")
    if above:
        flow.legend(fontsize=7, ncol=2)
    flow.tick_params(axis="x", rotation=30)
    engaged.barh(names, [100 * (report.totals.engaged_share or 0) for report in reports], color="#1565c0")
    engaged.invert_yaxis()
    engaged.set_xlim(0, 100)
    engaged.set_title("Engaged in the last 30 days (% of members)")
    spend.barh(names, [float(report.totals.average_net_spent or 0) for report in reports], color="#ef6c00")
    spend.invert_yaxis()
    spend.set_title("Average net spent (shop currency)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(args: argparse.Namespace) -> int:
    try:
        window = parse_duration(args.since)
    except ValueError as error:
        raise CliError(f"--since: {error}") from None
    use_target(args.aws, args.stack, args.region)
    edges = Edges(Settings.from_env())
    since = (edges.clock.now() - window).date()
    reports = segment_reports(edges, args.shop, since)
    if args.json:
        print(json.dumps([report.as_json() for report in reports], indent=2))
    else:
        print_human(reports, since)
    if args.png:
        draw_png(reports, since, Path(args.png), args.shop)
        if not args.json:
            print(f"\nchart written to {args.png}")
    return 0
