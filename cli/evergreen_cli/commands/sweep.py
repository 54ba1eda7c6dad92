"""`evergreen sweep`: run the staleness sweep against the local stack, or invoke the deployed one.

`--now <instant> --dry-run` evaluates as if at another time (an ISO 8601 instant, a date, or `+30d` from
now): the due index is read up to that instant, so the report shows who would enter or leave which
segment by then, with nothing written.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

import boto3

from evergreen.clock import Clock, FixedClock, SystemClock
from evergreen.segments import parse_duration
from evergreen.service.sweep import SweepRequest
from evergreen.settings import Settings
from evergreen.wiring import Edges, definitions_for
from evergreen_cli.activity import working
from evergreen_cli.aws_stack import DEFAULT_STACK, stack_outputs
from evergreen_cli.main import EXIT_USAGE, CliError, render_table
from evergreen_cli.targets import use_target


def instant(text: str, now: datetime | None = None) -> datetime:
    """`2027-06-01T00:00:00Z`, `2027-06-01` (midnight UTC) or `+30d` (from now) -> an aware UTC datetime."""
    if text.startswith("+"):
        try:
            return (now or datetime.now(UTC)) + parse_duration(text[1:])
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad instant {text!r}: write 2027-06-01T00:00:00Z, 2027-06-01 or +30d"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="compute and report; write and send nothing")
    parser.add_argument(
        "--segment", action="append", dest="segments", metavar="NAME", help="limit to this segment (repeatable)"
    )
    parser.add_argument("--full", action="store_true", help="re-evaluate every profile, not only those due")
    parser.add_argument(
        "--now",
        type=instant,
        metavar="INSTANT",
        help="evaluate as if at INSTANT (2027-06-01T00:00:00Z, 2027-06-01 or +30d); needs --dry-run, local only",
    )
    parser.add_argument("--aws", action="store_true", help="sweep the deployed stack (default: the local stack)")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument("--json", action="store_true", help="print the sweep's whole report as JSON (for scripts)")


def request_of(args: argparse.Namespace) -> SweepRequest:
    return SweepRequest(dry_run=args.dry_run, segments=args.segments, full=args.full)


def invoke_deployed(args: argparse.Namespace, request: SweepRequest) -> dict[str, Any]:
    function_name = stack_outputs(args.stack, args.region)["StalenessSweepFunctionName"]
    client: Any = boto3.client("lambda", region_name=args.region)
    response = client.invoke(FunctionName=function_name, Payload=request.model_dump_json(exclude_defaults=True))
    result: dict[str, Any] = json.loads(response["Payload"].read())
    return result


def run_locally(request: SweepRequest, clock: Clock | None = None) -> dict[str, Any]:
    """Sweep the target's table in this process; `clock` makes it evaluate at another instant."""
    return Edges(Settings.from_env(), clock=clock or SystemClock()).sweep.run(request).as_dict()


def check_segment_names(names: list[str] | None) -> None:
    """A --segment the definitions do not have would sweep nothing and say nothing: name the ones there are."""
    known = definitions_for(Settings.from_env()).names
    unknown = [name for name in names or [] if name not in known]
    if unknown:
        raise CliError(f"no segment {', '.join(unknown)}: --segment takes one of {', '.join(known)}", EXIT_USAGE)


def render_report(report: dict[str, Any]) -> str:
    """Who enters and leaves which segment (or would, in a dry run), then what the sweep did."""
    dry_run = bool(report.get("dry_run"))
    entered: dict[str, int] = report.get("entered") or {}
    exited: dict[str, int] = report.get("exited") or {}
    lines = [f"as of {report['as_of']}:"] if "as_of" in report else []
    if entered or exited:
        header = ["segment", "would enter", "would leave"] if dry_run else ["segment", "entered", "left"]
        rows = [[name, str(entered.get(name, 0)), str(exited.get(name, 0))] for name in sorted({*entered, *exited})]
        lines.append(render_table(rows, header))
    else:
        lines.append(f"no profile {'would enter or leave' if dry_run else 'entered or left'} a segment")
    did = f"{report.get('evaluated', 0)} of {report.get('due', 0)} due profiles evaluated"
    if dry_run:
        did += "; dry run: nothing written or sent"
    else:
        did += f", {report.get('written', 0)} written, {report.get('enqueued', 0)} changes queued for Klaviyo"
    if not report.get("complete", True):
        did += "; not finished in time: the next run goes on"
    return "\n".join([*lines, did])


def main(args: argparse.Namespace) -> int:
    request = request_of(args)
    if args.now is not None and not args.dry_run:
        raise CliError("--now evaluates as if at another time and must not write: add --dry-run", EXIT_USAGE)
    if args.aws:
        if args.now is not None:
            raise CliError("--now runs locally only: drop --aws (the deployed sweep always uses the real time)")
        with working(f"sweeping stack {args.stack} (its StalenessSweepFunction)"):
            report = invoke_deployed(args, request)
    else:
        use_target(False, args.stack, args.region)
        check_segment_names(args.segments)
        with working("sweeping the local stack"):
            report = run_locally(request, FixedClock(args.now) if args.now is not None else None)
        if args.now is not None:
            report = {"as_of": args.now.isoformat(timespec="seconds"), **report}
    print(json.dumps(report, indent=2) if args.json else render_report(report))
    return 0
