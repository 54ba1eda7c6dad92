"""The local moto server keeps DynamoDB's transaction guarantee while backing up only the items a transaction names."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from evergreen_local.resources import LocalResources


def _item(sk: str, **attributes: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": "shop#a.myshopify.com"}, "sk": {"S": sk}, **{k: {"N": str(v)} for k, v in attributes.items()}}


def test_a_cancelled_transaction_leaves_every_item_as_it_was(local_resources: LocalResources) -> None:
    dynamodb = local_resources.client("dynamodb")
    table = local_resources.table_name
    dynamodb.put_item(TableName=table, Item=_item("customer#1", orders=1))
    dynamodb.put_item(TableName=table, Item=_item("customer#2", orders=5))

    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": _item("customer#1", orders=2)}},
                {"Put": {"TableName": table, "Item": _item("order#9", orders=1)}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "shop#a.myshopify.com"}, "sk": {"S": "customer#2"}},
                        "UpdateExpression": "SET orders = :six",
                        "ConditionExpression": "orders = :four",
                        "ExpressionAttributeValues": {":six": {"N": "6"}, ":four": {"N": "4"}},
                    }
                },
            ]
        )

    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    items = dynamodb.scan(TableName=table)["Items"]
    held = sorted((item["sk"]["S"], item["orders"]["N"]) for item in items)
    assert held == [("customer#1", "1"), ("customer#2", "5")]


def test_a_transaction_that_succeeds_writes_every_item(local_resources: LocalResources) -> None:
    dynamodb = local_resources.client("dynamodb")
    table = local_resources.table_name
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": _item("customer#1", orders=1)}},
            {"Put": {"TableName": table, "Item": _item("order#9", orders=1)}},
        ]
    )
    assert len(dynamodb.scan(TableName=table)["Items"]) == 2
