"""`evergreen register-webhooks --eventbridge ARN`: Shopify delivers every topic to the app's EventBridge partner
event source instead of the HTTPS URL; a second run changes nothing; anything but such an ARN is refused."""

from __future__ import annotations

import pytest

from evergreen_cli.main import main
from tests.integration import test_register_webhooks_against_sandboxes as registering
from tests.integration.test_register_webhooks_against_sandboxes import NEEDED, SHOP, URL, subscribed

sandbox = registering.sandbox
"""The Shopify Admin sandbox with no subscriptions, as the URL tests use it."""

ARN = "arn:aws:events:eu-west-1::event-source/aws.partner/shopify.com/1830279/evergreen"


def test_https_subscriptions_move_to_the_partner_event_source_and_a_second_run_changes_nothing(sandbox, capsys):
    assert main(["register-webhooks", "--shop", SHOP, "--url", URL]) == 0
    capsys.readouterr()

    assert main(["register-webhooks", "--shop", SHOP, "--eventbridge", ARN]) == 0
    moved = capsys.readouterr().out
    assert main(["register-webhooks", "--shop", SHOP, "--eventbridge", ARN]) == 0

    assert subscribed(sandbox) == dict.fromkeys(NEEDED, ARN)
    assert f"0 created, {len(NEEDED)} changed" in moved
    assert f"0 created, 0 changed, {len(NEEDED)} left alone" in capsys.readouterr().out


@pytest.mark.parametrize(
    "given",
    [
        "arn:aws:sqs:eu-west-1:123456789012:queue",
        "arn:aws:events:eu-west-1::event-source/aws.partner/example.com/1/x",
        "aws.partner/shopify.com/1830279/evergreen",
    ],
)
def test_anything_but_a_shopify_partner_event_source_arn_is_refused_and_changes_nothing(sandbox, capsys, given):
    code = main(["register-webhooks", "--shop", SHOP, "--eventbridge", given])

    assert code != 0
    assert "arn:aws:events:<region>::event-source/aws.partner/shopify.com/" in capsys.readouterr().err
    assert sandbox.subscriptions == []
