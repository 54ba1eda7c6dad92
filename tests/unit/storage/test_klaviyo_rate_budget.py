"""Every container takes Klaviyo tokens from one budget per account: together they never exceed the account's
limits, the budget refills with time, and two accounts never share one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from evergreen.klaviyo import requests as kr
from evergreen.klaviyo.client import KlaviyoClient
from evergreen.klaviyo.requests import RateLimit
from evergreen.storage.rate_budget import DynamoRateBudget, account_key
from evergreen_cli.local_stack.inprocess import create_profiles_table
from tests.lambda_functions import use_test_environment
from tests.unit.klaviyo.klaviyo_fakes import API_KEY, BASE_URL, FakeKlaviyo, FakeTime, make_change

LIMIT = RateLimit(burst_per_second=3, steady_per_minute=60)


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_test_environment(monkeypatch)
    with mock_aws():
        create_profiles_table("profiles")
        yield boto3.client("dynamodb")


def test_containers_together_take_no_more_than_the_accounts_burst_then_wait_for_the_refill(dynamodb) -> None:
    time = FakeTime()
    containers = [DynamoRateBudget(dynamodb, "profiles", "AcCt1", time.clock) for _ in range(3)]

    granted = [budget.take("create_event", LIMIT) for budget in containers for _ in range(2)]

    assert granted.count(0.0) == 3, "3 a second for the account, however many containers ask"
    assert min(wait for wait in granted if wait) == pytest.approx(1 / 3, rel=0.01)
    time.sleep(1 / 3)
    assert containers[2].take("create_event", LIMIT) == 0.0
    assert containers[0].take("create_event", LIMIT) > 0


def test_each_account_and_operation_has_its_own_budget(dynamodb) -> None:
    time = FakeTime()
    first, other = (DynamoRateBudget(dynamodb, "profiles", account, time.clock) for account in ("AcCt1", "AcCt2"))
    for _ in range(3):
        assert first.take("create_event", LIMIT) == 0.0

    assert first.take("create_event", LIMIT) > 0
    assert first.take("profile_import", LIMIT) == 0.0
    assert other.take("create_event", LIMIT) == 0.0


def test_two_containers_clients_share_the_budget_and_the_key_never_names_the_budget(dynamodb) -> None:
    time = FakeTime()
    klaviyo = FakeKlaviyo()
    limits = {kr.OP_PROFILE_IMPORT: LIMIT}
    clients = [
        KlaviyoClient(
            BASE_URL,
            API_KEY,
            http=httpx.Client(transport=httpx.MockTransport(klaviyo)),
            sleep=time.sleep,
            clock=time.clock,
            rate_limits=limits,
            shared_budget=DynamoRateBudget(dynamodb, "profiles", account_key(None, API_KEY), time.clock),
        )
        for _ in range(2)
    ]

    for number in range(6):
        clients[number % 2].send(kr.profile_import(make_change(number)))

    assert len(klaviyo.sent) == 6
    assert sum(client.shared_waited_s for client in clients) == pytest.approx(1.0, rel=0.01), (
        "each container alone would have sent all 6 within its own burst of 3 and never waited"
    )
    stored = dynamodb.scan(TableName="profiles")["Items"]
    assert API_KEY not in str(stored)
    assert account_key("AbC123", API_KEY) == "AbC123"
