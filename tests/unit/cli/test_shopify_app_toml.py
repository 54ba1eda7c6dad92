"""`evergreen shopify-app-toml`: the [webhooks] section of shopify.app.toml, as the Shopify CLI reads it."""

from __future__ import annotations

import tomllib

from evergreen.settings import SHOPIFY_API_VERSION
from evergreen.shopify import COMPLIANCE_TOPICS, SUBSCRIPTION_TOPICS
from evergreen_cli.commands.shopify_app_toml import webhooks_section
from evergreen_cli.main import main

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/shopify"


def test_the_section_subscribes_every_topic_and_the_compliance_topics_at_the_pinned_version():
    config = tomllib.loads(webhooks_section(URL))

    webhooks = config["webhooks"]
    assert webhooks["api_version"] == SHOPIFY_API_VERSION
    topics, compliance = webhooks["subscriptions"]
    assert sorted(topics["topics"]) == sorted(SUBSCRIPTION_TOPICS)
    assert sorted(compliance["compliance_topics"]) == sorted(COMPLIANCE_TOPICS)
    assert topics["uri"] == compliance["uri"] == URL


def test_the_command_prints_it_for_a_given_url(capsys):
    assert main(["shopify-app-toml", "--url", URL]) == 0

    assert tomllib.loads(capsys.readouterr().out)["webhooks"]["subscriptions"][0]["uri"] == URL


def test_without_a_url_it_prints_a_placeholder_and_says_where_the_url_comes_from(capsys):
    assert main(["shopify-app-toml"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("# replace the uri with your stack's ShopifyWebhookUrl")
    assert tomllib.loads(out)["webhooks"]["api_version"] == SHOPIFY_API_VERSION


def test_the_section_asks_for_the_latest_stable_version_shopify_supports():
    """2026-10: released 2026-10-01, supported until 2027-10-01 (the Shopify CLI refuses versions over a year old)."""
    assert tomllib.loads(webhooks_section(URL))["webhooks"]["api_version"] == "2026-10"
