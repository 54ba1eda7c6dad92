"""The `evergreen` command line: one sub-command per module, each with configure() and main().

Expected mistakes (a port in use, the stack not running, a missing file, no AWS region or credentials, a
bad flag) end in one line on stderr that names what fixes it, and a non-zero exit code. Commands raise
`CliError` for their own; `friendly_message` maps the well-known exceptions of the libraries underneath.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import os
import re
import socket
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn
from urllib.parse import urlsplit

PRODUCT = """\
Evergreen keeps a Shopify store's Klaviyo segments from going stale: it applies Shopify and Klaviyo
webhooks to one profile per customer, re-evaluates segments on every event and exactly when time makes
them flip, and syncs every membership change to Klaviyo.

Every command works against the local stack (`make run`, in another terminal) unless given --aws,
which uses the deployed stack (--stack, --region)."""

EXAMPLES = """\
examples:
  {prog} send-webhook events/shopify/orders_create.json --topic orders/create
  {prog} explain --shop evergreen-demo.myshopify.com --email jon.snow@example.com
  {prog} sweep --dry-run --now 2027-06-01T00:00:00Z
  {prog} plan my-segments.yaml
  {prog} register-webhooks --aws --shop my-store.myshopify.com --dry-run
  {prog} doctor --aws
"""


def program() -> str:
    """The command as the user types it: `./evergreen` through the checkout's wrapper, else `evergreen`."""
    return os.environ.get("EVERGREEN_PROG") or "evergreen"


def command(line: str) -> str:
    """`line` as a command to paste, e.g. command("redrive --aws") -> "`./evergreen redrive --aws`"."""
    return f"`{program()} {line}`"


COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("evergreen_cli.local_stack.stack", "start the whole pipeline on this machine (Ctrl-C stops it)"),
    "send-webhook": ("evergreen_cli.commands.send_webhook", "send a correctly signed Shopify or Klaviyo webhook"),
    "explain": ("evergreen_cli.commands.explain", "why a customer is or is not in each segment, and when that flips"),
    "sweep": ("evergreen_cli.commands.sweep", "apply the segment changes time has made due (or preview them)"),
    "plan": ("evergreen_cli.commands.plan", "preview what a segments file would change before you deploy it"),
    "doctor": ("evergreen_cli.commands.doctor", "check a stack end to end and say how to fix what is wrong"),
    "redrive": (
        "evergreen_cli.commands.redrive",
        "move failed Klaviyo updates from the dead-letter queue back to sync",
    ),
    "register-webhooks": (
        "evergreen_cli.commands.register_webhooks",
        "subscribe the shop's Shopify webhooks (or Klaviyo's, --klaviyo) to the stack",
    ),
    "shopify-app-toml": (
        "evergreen_cli.commands.shopify_app_toml",
        "print the [webhooks] section for your shopify.app.toml",
    ),
    "backfill": ("evergreen_cli.commands.backfill", "import a shop's Shopify and Klaviyo history, then its segments"),
    "seed-shop": ("evergreen_cli.commands.seed_shop", "fill the local Shopify sandbox with a synthetic store"),
    "console-events": (
        "evergreen_cli.commands.console_events",
        "publish the sweep's and backfill's console test events",
    ),
    "check-aws": (
        "evergreen_cli.commands.check_aws",
        "check the AWS region and credentials (make deploy runs it first)",
    ),
    "report": ("evergreen_cli.commands.report", "how each segment is doing: members, entries, exits (--png: a chart)"),
    "audit": ("evergreen_cli.commands.audit", "compare what Klaviyo holds with the table (--repair mends drift)"),
}

LISTENING_COMMANDS = frozenset({"run"})
"""Commands that listen on their --*port flags: a port already taken is reported before anything starts."""

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An expected failure: its message is the one line the user sees (say what fixes it)."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean orders/create?` for the choice closest to a mistyped `word`, else ""."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line naming the command's --help (and the closest command or flag)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message}{self._suggestion(message)} (see `{self.prog} --help`)\n")

    def _suggestion(self, message: str) -> str:
        if choice := re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message):
            return did_you_mean(choice[1], re.findall(r"'([^']*)'", choice[2]))
        if unknown := re.match(r"unrecognized arguments: (.*)", message):
            flags = [option for option in self._option_string_actions if option.startswith("--")]
            words = [word.split("=", 1)[0] for word in unknown[1].split() if word.startswith("--")]
            return next((hint for word in words if (hint := did_you_mean(word, flags))), "")
        return ""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=program(),
        description=PRODUCT,
        epilog=EXAMPLES.format(prog=program()),
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(prog, max_help_position=22, width=104),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="<command>", parser_class=Parser)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.configure(sub)
        sub.set_defaults(handler=module.main, command_parser=sub)
    return parser


def render_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


# -- well-known exceptions -> one line ---------------------------------------------------------

LOCAL_SERVICES = {
    3000: "the local HTTP API",
    4566: "the local stack's AWS (moto)",
    3100: "the Klaviyo sandbox",
    3200: "the Shopify sandbox",
}


def _unreachable(url: str, args: argparse.Namespace | None) -> str:
    parts = urlsplit(url if "//" in url else f"//{url}")
    where = f"{parts.hostname}:{parts.port}" if parts.port else (parts.hostname or url)
    if parts.hostname in ("127.0.0.1", "localhost", "::1"):
        what = LOCAL_SERVICES.get(parts.port or 0, "the local stack")
        other = ""
        if args is not None and hasattr(args, "aws"):
            other = " (or pass --aws for the deployed stack)"
        elif args is not None and hasattr(args, "url"):
            other = " (or pass --url)"
        return f"cannot reach {what} at {where}: start the stack with `make run` in another terminal{other}"
    return f"cannot reach {where}: check the URL, and that the stack is deployed"


def _request_url(error: Any) -> str:
    try:
        return str(error.request.url)
    except RuntimeError:  # raised by httpx when no request is attached
        return "the server"


def busy_ports(args: argparse.Namespace | None) -> list[tuple[str, int]]:
    """The --*port flags given to the command whose port is already taken on its host."""
    if args is None:
        return []
    host = str(getattr(args, "host", "127.0.0.1"))
    busy = []
    for name, value in sorted(vars(args).items()):
        if not name.endswith("port") or not isinstance(value, int) or value <= 0:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As the servers themselves bind: a port whose last connections linger in TIME_WAIT (a stack
            # stopped a moment ago) is free to listen on.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, value))
            except OSError:
                busy.append(("--" + name.replace("_", "-"), value))
    return busy


def _address_in_use(args: argparse.Namespace | None) -> str:
    busy = busy_ports(args)
    if not busy:
        return "a port the command needs is in use: stop the other process (is `make run` already running?)"
    flag, port = busy[0]
    return (
        f"port {port} is in use (is `make run` already running?): stop what holds it (`lsof -i :{port}`) "
        f"or {pass_flag(flag, '<another port>')}"
    )


def pass_flag(flag: str, value: str) -> str:
    """How to give `flag` as the user started the command: through make (the Makefile sets EVERGREEN_MAKE_TARGET)
    a variable on make's command line, e.g. "run `make run SHOPIFY_PORT=<another port>`", else "pass --flag value"."""
    target = os.environ.get("EVERGREEN_MAKE_TARGET")
    if target:
        return f"run `make {target} {flag.removeprefix('--').replace('-', '_').upper()}={value}`"
    return f"pass {flag} {value}"


def _client_error(error: Any, args: argparse.Namespace | None) -> str | None:
    details = error.response.get("Error", {})
    code, message = str(details.get("Code", "")), str(details.get("Message", ""))
    operation = getattr(error, "operation_name", "")
    if operation == "DescribeStacks" and "does not exist" in message:
        stack = getattr(args, "stack", "evergreen")
        return f"no CloudFormation stack {stack!r} in this region: pass --stack NAME and --region REGION"
    if code in {"ExpiredToken", "ExpiredTokenException", "UnrecognizedClientException", "InvalidClientTokenId"}:
        return f"AWS rejected your credentials ({code}): refresh them (`aws sso login` or `aws configure`)"
    if code in {"AccessDenied", "AccessDeniedException"}:
        return f"AWS denied {operation or 'the request'}: {message} (use credentials allowed to operate the stack)"
    if code in {"ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}:
        local = not getattr(args, "aws", True)
        hint = "restart `make run`" if local else "check --stack and --region"
        return f"{operation or 'a request'} found no such resource ({message or code}): {hint}"
    return None


def friendly_message(error: BaseException, args: argparse.Namespace | None = None) -> str | None:
    """One line for an expected failure, or None for a bug (which keeps its traceback)."""
    import botocore.exceptions as aws  # noqa: PLC0415 - imported when something failed
    import httpx  # noqa: PLC0415

    from evergreen.segments.definitions import DefinitionsError  # noqa: PLC0415
    from evergreen_cli.targets import TargetUnavailable  # noqa: PLC0415

    match error:
        case CliError() | TargetUnavailable():
            return str(error)
        case DefinitionsError():
            return str(error).strip()
        case aws.NoRegionError():
            return "no AWS region: pass --region REGION or set AWS_REGION (or run `aws configure`)"
        case aws.NoCredentialsError() | aws.PartialCredentialsError():
            return "no AWS credentials: run `aws configure` (or `aws sso login`, or set AWS_PROFILE)"
        case aws.TokenRetrievalError() | aws.SSOTokenLoadError():
            return "your AWS SSO session has expired: run `aws sso login`"
        case aws.ProfileNotFound():
            return f"{error}: check AWS_PROFILE or `aws configure list-profiles`"
        case aws.EndpointConnectionError():
            return _unreachable(str(error.kwargs.get("endpoint_url", "")), args)
        case aws.ClientError():
            return _client_error(error, args)
        case httpx.ConnectError() | httpx.ConnectTimeout():
            return _unreachable(_request_url(error), args)
        case httpx.TimeoutException():
            return f"no answer in time from {_request_url(error)}: is the stack overloaded or stopped?"
        case FileNotFoundError():
            return f"no such file: {error.filename} (check the path; run from the repository's root)"
        case IsADirectoryError():
            return f"{error.filename} is a directory: give a file"
        case PermissionError():
            return f"permission denied: {error.filename}"
        case ConnectionRefusedError():
            return _unreachable("127.0.0.1", args)
        case OSError() if error.errno == errno.EADDRINUSE:
            return _address_in_use(args)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args: argparse.Namespace | None = None
    try:
        try:
            args, unknown = build_parser().parse_known_args(argv)
            if unknown:
                args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        except SystemExit as done:  # --help, or a usage mistake already reported in one line
            return done.code if isinstance(done.code, int) else EXIT_USAGE
        if args.command in LISTENING_COMMANDS and busy_ports(args):
            raise CliError(_address_in_use(args))
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        message = friendly_message(error, args)
        if message is None:
            raise
        where = f"{program()} {args.command}" if args is not None else program()
        print(f"{where}: {message}", file=sys.stderr)
        return error.code if isinstance(error, CliError) else EXIT_FAILURE
    return code


if __name__ == "__main__":
    sys.exit(main())
