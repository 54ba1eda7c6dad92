"""`evergreen register-webhooks --shop S`: make the shop's webhook subscriptions exactly what Evergreen needs.

Every topic Evergreen handles is subscribed at the stack's Shopify webhook URL (JSON). A subscription
at another address is moved here, one for a topic Evergreen does not handle at this address is deleted,
and the rest is left alone, so a second run changes nothing. The compliance topics cannot be subscribed
through the API: they live in the app's configuration (`evergreen shopify-app-toml`).

With `--eventbridge ARN` the subscriptions name the app's Amazon EventBridge partner event source instead of a
URL (Shopify's `uri` takes the ARN), so Shopify delivers to the stack's partner event bus (docs/shopify.md).

With `--klaviyo` it creates or updates the Klaviyo system webhook instead (see `klaviyo_webhook`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from evergreen.settings import SHOPIFY_API_VERSION, Settings
from evergreen.shopify import COMPLIANCE_TOPICS, SUBSCRIPTION_TOPICS
from evergreen.shopify.admin import WebhookAdmin, WebhookSubscription, topic_enum
from evergreen.shopify.bulk import AdminError
from evergreen.shopify.eventbridge import PARTNER_SOURCE_ARN
from evergreen_cli.activity import working
from evergreen_cli.arguments import shop_domain
from evergreen_cli.aws_stack import DEFAULT_STACK, stack_outputs
from evergreen_cli.main import CliError, command, render_table
from evergreen_cli.sandboxes.shopify_admin import local_admin_token
from evergreen_cli.targets import TargetUnavailable, local_api_url, use_target

Action = Literal["create", "update", "keep", "delete", "other"]
SHOWN: dict[Action, str] = {
    "create": "created",
    "update": "changed",
    "keep": "left alone",
    "delete": "deleted",
    "other": "left alone (not Evergreen's)",
}
DRY_SHOWN: dict[Action, str] = {
    "create": "would create",
    "update": "would change",
    "keep": "left alone",
    "delete": "would delete",
    "other": "left alone (not Evergreen's)",
}


@dataclass(frozen=True)
class Step:
    """One row of the plan: what happens to one topic's subscription."""

    action: Action
    topic: str
    """The WebhookSubscriptionTopic value."""
    uri: str
    subscription_id: str | None = None
    was: str | None = None
    """For an update: the address (and format) it had."""


def needed_topics() -> list[str]:
    """The WebhookSubscriptionTopic values Evergreen subscribes to, sorted."""
    return sorted(topic_enum(topic) for topic in SUBSCRIPTION_TOPICS)


def plan(existing: Iterable[WebhookSubscription], url: str, topics: Iterable[str] | None = None) -> list[Step]:
    """The steps that make `existing` exactly Evergreen's topics at `url` (JSON). Pure."""
    wanted = set(topics if topics is not None else needed_topics())
    by_topic: dict[str, list[WebhookSubscription]] = {}
    for subscription in existing:
        by_topic.setdefault(subscription.topic, []).append(subscription)
    steps: list[Step] = []
    for topic in sorted(wanted | set(by_topic)):
        found = by_topic.get(topic, [])
        if topic not in wanted:
            for item in found:
                action: Action = "delete" if item.uri == url else "other"
                steps.append(Step(action, topic, item.uri, item.id))
            continue
        here = [item for item in found if item.uri == url]
        elsewhere = [item for item in found if item.uri != url]
        if here:
            chosen = here[0]
            if chosen.format == "JSON":
                steps.append(Step("keep", topic, url, chosen.id))
            else:
                steps.append(Step("update", topic, url, chosen.id, f"{chosen.uri} ({chosen.format})"))
            steps += [Step("other", topic, item.uri, item.id) for item in elsewhere]
        elif elsewhere:
            first, *rest = elsewhere
            steps.append(Step("update", topic, url, first.id, first.uri))
            steps += [Step("other", topic, item.uri, item.id) for item in rest]
        else:
            steps.append(Step("create", topic, url))
    return steps


def apply(
    admin: WebhookAdmin,
    steps: Iterable[Step],
    existing: Iterable[WebhookSubscription],
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[WebhookSubscription]:
    """Carry out the create, update and delete steps, in order; returns the subscriptions afterwards.
    `progress(done, total)` after each change."""
    after = {item.id: item for item in existing}
    changes = [step for step in steps if step.action in ("create", "update", "delete")]
    for done, step in enumerate(changes, start=1):
        if step.action == "create":
            created = admin.create_webhook_subscription(step.topic, step.uri)
            after[created.id] = created
        elif step.action == "update" and step.subscription_id:
            after[step.subscription_id] = admin.update_webhook_subscription(step.subscription_id, step.uri)
        elif step.action == "delete" and step.subscription_id:
            admin.delete_webhook_subscription(step.subscription_id)
            after.pop(step.subscription_id, None)
        progress(done, len(changes))
    return list(after.values())


def version_mismatches(existing: Iterable[WebhookSubscription], topics: Iterable[str] | None = None) -> list[str]:
    """API versions, other than the pinned one, that Evergreen's subscriptions are delivered at."""
    wanted = set(topics if topics is not None else needed_topics())
    return sorted(
        {
            item.api_version
            for item in existing
            if item.topic in wanted and item.api_version and item.api_version != SHOPIFY_API_VERSION
        }
    )


VERSION_FIX = (
    "Shopify serializes every subscription of an app at the app's webhook API version (the Admin API cannot "
    f"set it per subscription): set it to {SHOPIFY_API_VERSION} in the app's configuration (`api_version` under "
    f"[webhooks]; {command('shopify-app-toml')} prints the section; `shopify app deploy`), then run "
    f"{command('register-webhooks --shop <shop>')} again to see each subscription's version"
)
COMPLIANCE_NOTE = (
    f"compliance topics ({', '.join(sorted(COMPLIANCE_TOPICS))}) cannot be subscribed through the API: "
    f"set them in the app's configuration. {command('shopify-app-toml --aws')} prints the [webhooks] section "
    "with their compliance_topics for shopify.app.toml (`shopify app deploy`), or enter the same URL under "
    "the app's compliance webhooks in the Partner Dashboard."
)


# -- where: the stack's URL and the shop's Admin token ------------------------------------------


def webhook_url(args: argparse.Namespace) -> str:
    if args.eventbridge:
        if args.url:
            raise CliError("--eventbridge and --url each name where Shopify delivers: give one")
        if not PARTNER_SOURCE_ARN.fullmatch(args.eventbridge):
            raise CliError(
                "--eventbridge takes the partner event source's ARN: "
                "arn:aws:events:<region>::event-source/aws.partner/shopify.com/<app id>/<event source name>"
            )
        return str(args.eventbridge)
    if args.url:
        return str(args.url)
    if args.aws:
        outputs = stack_outputs(args.stack, args.region)
        if not outputs.get("ShopifyWebhookUrl"):
            raise CliError(f"stack {args.stack!r} has no output ShopifyWebhookUrl: deploy it first (`make deploy`)")
        return outputs["ShopifyWebhookUrl"]
    return f"{local_api_url()}/webhooks/shopify"


def admin_for(args: argparse.Namespace) -> WebhookAdmin:
    """The shop's Admin client: the deployed stack's token from Secrets Manager, or the local sandbox."""
    from evergreen.backfill_wiring import MissingAdminToken, admin_token  # noqa: PLC0415
    from evergreen.wiring import Edges  # noqa: PLC0415

    environment = use_target(args.aws, args.stack, args.region)
    if args.aws:
        outputs = stack_outputs(args.stack, args.region)
        if "ShopifyAdminTokensArn" in outputs:
            environment["SHOPIFY_ADMIN_SECRETS_ID"] = outputs["ShopifyAdminTokensArn"]
        settings = Settings.from_env({**os.environ, **environment})
        try:
            token = admin_token(Edges(settings), args.shop)
        except MissingAdminToken as error:
            raise CliError(f"{error}: store the shop's Admin API token first (README, Backfill)") from None
        return WebhookAdmin(args.shop, token)
    settings = Settings.from_env({**os.environ, **environment})
    if not settings.shopify_admin_base_url:
        raise TargetUnavailable("the local stack has no Shopify sandbox: restart it with `make run`")
    token = local_admin_token()
    return WebhookAdmin(args.shop, token, base_url=settings.shopify_admin_base_url)


# -- the command -------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shop", type=shop_domain, required=True, help="shop domain, e.g. my-store.myshopify.com")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--aws", action="store_true", help="register the deployed stack's URL (its outputs)")
    where.add_argument("--url", help="register this webhook URL instead of the stack's")
    parser.add_argument(
        "--eventbridge",
        metavar="ARN",
        help="subscribe the app's Amazon EventBridge partner event source (its ARN) instead of a webhook URL",
    )
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    parser.add_argument(
        "--klaviyo", action="store_true", help="create or update the Klaviyo system webhook instead of Shopify's"
    )


def steps_table(steps: list[Step], dry_run: bool, subscriptions: Iterable[WebhookSubscription] = ()) -> str:
    """One row per step, with the API version Shopify delivers that subscription at ("-" before it exists)."""
    shown = DRY_SHOWN if dry_run else SHOWN
    versions = {(item.topic, item.uri): item.api_version or "-" for item in subscriptions}
    rows = [
        [
            shown[step.action],
            step.topic,
            versions.get((step.topic, step.uri), "-"),
            step.uri + (f"  (was {step.was})" if step.was else ""),
        ]
        for step in steps
    ]
    return render_table(rows, ["result", "topic", "version", "address"])


def register_shopify(args: argparse.Namespace) -> int:
    url = webhook_url(args)
    with admin_for(args) as admin, working(f"reading {args.shop}'s webhook subscriptions") as activity:
        try:
            existing = admin.webhook_subscriptions()
            steps = plan(existing, url)
            changing = activity.counting(f"updating {args.shop}'s subscriptions")
            result = existing if args.dry_run else apply(admin, steps, existing, changing)
        except AdminError as error:
            raise CliError(str(error), int(getattr(error, "exit_code", 1))) from None
    print(steps_table(steps, args.dry_run, result))
    counts = {action: sum(1 for step in steps if step.action == action) for action in SHOWN}
    verb = "would be " if args.dry_run else ""
    print(
        f"{args.shop}: {counts['create']} {verb}created, {counts['update']} {verb}changed, "
        f"{counts['keep']} left alone, {counts['delete']} {verb}deleted"
        + (f", {counts['other']} not Evergreen's left alone" if counts["other"] else "")
    )
    print(COMPLIANCE_NOTE)
    mismatched = version_mismatches(result)
    if mismatched:
        print(f"! subscriptions are delivered at API version {', '.join(mismatched)}: {VERSION_FIX}")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.klaviyo:
        from evergreen_cli.commands.register_klaviyo_webhook import register_klaviyo  # noqa: PLC0415

        return register_klaviyo(args)
    return register_shopify(args)
