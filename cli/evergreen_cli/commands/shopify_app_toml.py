"""`evergreen shopify-app-toml`: the `[webhooks]` section of shopify.app.toml that Evergreen needs.

Merchants who ship their app's configuration with the Shopify CLI (`shopify app deploy`) paste it into
shopify.app.toml: every topic Evergreen handles, and the compliance topics, at the stack's Shopify URL
and the API version Evergreen models.
"""

from __future__ import annotations

import argparse
import json

from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify import COMPLIANCE_TOPICS, SUBSCRIPTION_TOPICS
from evergreen_cli.aws_stack import DEFAULT_STACK, stack_outputs

PLACEHOLDER_URL = "https://<api-id>.execute-api.<region>.amazonaws.com/webhooks/shopify"


def _toml_list(items: list[str], indent: str) -> str:
    inner = ",\n".join(f"{indent}  {json.dumps(item)}" for item in items)
    return f"[\n{inner}\n{indent}]"


def webhooks_section(url: str, api_version: str = SHOPIFY_API_VERSION) -> str:
    """The TOML text: one subscription for the topics, one for the compliance topics, both to `url`."""
    return "\n".join(
        [
            "[webhooks]",
            f"api_version = {json.dumps(api_version)}",
            "",
            "  [[webhooks.subscriptions]]",
            f"  topics = {_toml_list(sorted(SUBSCRIPTION_TOPICS), '  ')}",
            f"  uri = {json.dumps(url)}",
            "",
            "  [[webhooks.subscriptions]]",
            f"  compliance_topics = {_toml_list(sorted(COMPLIANCE_TOPICS), '  ')}",
            f"  uri = {json.dumps(url)}",
            "",
        ]
    )


def configure(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="the Shopify webhook URL (the stack output ShopifyWebhookUrl)")
    where.add_argument("--aws", action="store_true", help="read the URL from the deployed stack's outputs")
    parser.add_argument("--stack", default=DEFAULT_STACK, help=f"CloudFormation stack (default: {DEFAULT_STACK})")
    parser.add_argument("--region", help="AWS region")


def main(args: argparse.Namespace) -> int:
    url = args.url or (stack_outputs(args.stack, args.region)["ShopifyWebhookUrl"] if args.aws else None)
    if url is None:
        print("# replace the uri with your stack's ShopifyWebhookUrl (or run with --aws)")
    print(webhooks_section(url or PLACEHOLDER_URL), end="")
    return 0
